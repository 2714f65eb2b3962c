"""Built-in plugin ``journal_sqlite``: the ``sqlite`` event journal and ``engine journal``.

- ``sqlite`` journal (:class:`~engine.journal.sqlite.SqliteJournal`): one SQLite
  file in WAL mode; ``[journal] type = "sqlite" path = "runs/paper.db"``.
- ``engine journal show FILE [--kind KIND]... [--ref REF] [--after SEQ] [--limit N]
  [--json]``: one line per record (read-only; safe while an engine writes).
- ``engine journal verify FILE``: repairs a torn write as the engine would when it
  opens the journal (and says so), then checks it (:func:`engine.journal.verify.verify`);
  exit code 0 when consistent, 1 with one line per problem.
- ``engine journal replay FILE [--no-data] [--json]``: rebuilds the journaled run
  and prints its report.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from engine import Journal, JournalError, SqliteJournal, SqliteJournalConfig, hookimpl

__all__ = [
    "SqliteJournal",
    "SqliteJournalConfig",
    "format_line",
    "journal_cli",
    "json_line",
    "utc",
    "verify_file",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@hookimpl
def engine_journals() -> list[Journal]:
    """The ``sqlite`` journal."""
    return [
        Journal(
            name="sqlite",
            factory=SqliteJournal,
            config_type=SqliteJournalConfig,
            description="Event journal in a SQLite file (WAL mode, a block of records with"
            " its CRC per commit).",
        )
    ]


# -- what the commands print ------------------------------------------------------------


def utc(ts: int) -> str:
    """Engine time (ns) as UTC ISO 8601: ``2024-01-02T03:04:05Z``, with ``.250``,
    ``.250001`` or ``.250000001`` when there is a fraction."""
    seconds, nanos = divmod(ts, 1_000_000_000)
    text = (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        fraction = f"{nanos:09d}"
        while fraction.endswith("000"):
            fraction = fraction[:-3]
        text += f".{fraction}"
    return text + "Z"


def format_line(raw: Any) -> str:
    """``seq  time  kind  ref  data`` (``data``: the stored compact JSON)."""
    return f"{raw.seq}  {utc(raw.ts)}  {raw.kind}  {raw.ref}  {raw.text}"


def json_line(raw: Any) -> str:
    """One JSON object: ``{"seq", "ts", "time", "kind", "ref", "data"}``."""
    head = {"seq": raw.seq, "ts": raw.ts, "time": utc(raw.ts), "kind": raw.kind, "ref": raw.ref}
    return f'{json.dumps(head, separators=(",", ":"))[:-1]},"data":{raw.text}}}'


def verify_file(path: str) -> tuple[bool, list[str]]:
    """Open the journal ``path`` (recovering a torn write, as the engine would) and
    check it: ``(ok, lines to print)``. Raises :class:`~engine.errors.JournalError`
    when it is not a journal."""
    lines: list[str] = []
    with SqliteJournal(SqliteJournalConfig(path=path)) as store:
        if store.recovered is not None:
            lines.append(f"{path}: recovered: {store.recovered.message}")
        problems = store.verify()
        summary = f"{store.count()} records, last seq {store.last_seq}"
    lines.extend(f"{path}: {p}" for p in problems)
    if problems:
        n = len(problems)
        lines.append(f"{path}: {n} problem{'s' if n > 1 else ''} ({summary})")
    else:
        lines.append(f"{path}: OK ({summary})")
    return not problems, lines


def _fail(exc: JournalError) -> NoReturn:
    """Print an engine error as one line and exit with its code (like the core CLI)."""
    import click

    click.secho(str(exc), fg="red", err=True)
    sys.exit(exc.exit_code)


# -- the command group --------------------------------------------------------------------


def journal_cli() -> Any:
    """Build the ``engine journal`` click group (click is imported here, so loading
    the plugin stays cheap).

    To add a subcommand (e.g. ``replay``), write one more function decorated with
    ``@journal.command(name=...)`` in this builder, after ``verify`` (catch
    :class:`JournalError` and call ``_fail(exc)`` to print it as one line).
    """
    import click

    @click.group(name="journal")
    def journal() -> None:
        """Event journal tools (from the journal_sqlite plugin)."""

    @journal.command(name="show")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option(
        "--kind", "kinds", multiple=True, metavar="KIND", help="Only this kind (repeatable)."
    )
    @click.option("--ref", default=None, help="Only records with this ref (client order id...).")
    @click.option(
        "--after", default=0, type=click.IntRange(min=0), metavar="SEQ", help="Records after SEQ."
    )
    @click.option(
        "--limit", default=None, type=click.IntRange(min=0), metavar="N", help="At most N records."
    )
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
    def show(
        file: str,
        kinds: tuple[str, ...],
        ref: str | None,
        after: int,
        limit: int | None,
        as_json: bool,
    ) -> None:
        """Print the records of the journal FILE: seq, time (UTC), kind, ref, data."""
        render = json_line if as_json else format_line
        try:
            for raw in SqliteJournal.scan(file, after=after, kinds=kinds, ref=ref, limit=limit):
                click.echo(render(raw))
        except JournalError as exc:
            _fail(exc)

    @journal.command(name="verify")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    def verify_command(file: str) -> None:
        """Check the journal FILE: sequence, CRCs, kinds, order states, fills.

        A torn write is recovered first, exactly as the engine does when it opens the
        journal (a damaged file is kept as FILE.damaged-N), and reported: run it on a
        journal no engine has open. Exit code 0 when the journal is consistent, 1
        otherwise.
        """
        try:
            ok, lines = verify_file(file)
        except JournalError as exc:
            _fail(exc)
        for line in lines:
            click.echo(line)
        if not ok:
            raise SystemExit(1)

    @journal.command(name="replay")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--no-data", is_flag=True, help="Do not load the feed (no equity curve).")
    @click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
    def replay_command(file: str, no_data: bool, as_json: bool) -> None:
        """Rebuild the run journaled in FILE and print its report: portfolio, orders
        and trading state from the journal alone (no strategy, no venue); the feed of
        the journaled config gives the equity curve and statistics."""
        try:
            result, open_orders = _replay(file, load_data=not no_data)
        except JournalError as exc:
            _fail(exc)
        if as_json:
            click.echo(json.dumps({**result.summary(), "open_orders": open_orders}, indent=2))
            return
        click.echo(f"{file}: replayed {result.name!r}")
        width = max(len(label) for label, _ in result.report_rows())
        for label, value in result.report_rows():
            click.echo(f"  {label:<{width}}  {value}")
        state = result.state_changes[-1].state.value if result.state_changes else "active"
        click.echo(f"  {'trading state':<{width}}  {state}")
        click.echo(f"  {'open orders':<{width}}  {', '.join(open_orders) or '-'}")

    return journal


def _replay(path: str, *, load_data: bool) -> tuple[Any, list[str]]:
    import asyncio

    from engine import Engine

    store = SqliteJournal(SqliteJournalConfig(path=path))
    try:
        engine = Engine.from_journal(store.entries())
        result = asyncio.run(engine.replay_journal(store.entries(), load_data=load_data))
    finally:
        store.close()
    open_orders = sorted(cid for cid, o in result.orders.items() if o.is_open)
    return result, open_orders


@hookimpl
def engine_cli_commands() -> list[Any]:
    """``engine journal show|verify|replay``."""
    from engine import CliCommand

    return [CliCommand(name="journal", command=journal_cli())]
