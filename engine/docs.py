"""Generate the reference pages: ``docs/hooks.md`` from the hook specifications and
``docs/cli.md`` from the command line.

    python -m engine.docs           # write both pages
    python -m engine.docs --check   # exit 1 if either page is out of date
"""

from __future__ import annotations

import inspect
import sys
import typing
from pathlib import Path
from typing import Any

import attrs
import click

from engine import hookspecs

__all__ = ["cli_page", "components_page", "hooks_page", "main", "metrics_page"]

#: Record hooks whose records are configured as components, with their config section.
_CONFIGURED = {
    "engine_feeds": "[feed]",
    "engine_brokers": "[broker]",
    "engine_strategies": "[[strategies]]",
    "engine_filters": "[[filters]]",
    "engine_validation_rules": "[[validation_rules]]",
    "engine_guards": "[[guards]]",
    "engine_runtime_guards": "[[runtime_guards]]",
    "engine_alert_sinks": "[[alert_sinks]]",
    "engine_metrics_stores": "[[metrics_stores]]",
    "engine_exporters": "[[exporters]]",
}


def metrics_page() -> str:
    """Markdown for the engine's metric catalogue."""
    from engine.kernel.catalogue import CATALOGUE, EMITTED

    lines = [
        "# Metrics",
        "",
        "Generated from `engine/kernel/catalogue.py` by `python -m engine.docs`; do not edit.",
        "",
        "The engine derives these from its own state whenever metrics are collected: every",
        "`[metrics] interval` of engine time while a metrics store or exporter is configured,",
        "and once at the end of every run (`RunResult.metrics`). Nothing is counted per",
        "event. Plugins add their own through `ctx.metrics` / `engine.metrics`",
        "(`counter(name, **labels).inc()`, `gauge(...).set(v)`, `histogram(...).observe(v)`).",
        "Stores and exporters that raise are counted in `engine_plugin_errors_total`",
        "{plugin, kind} and logged once per collection.",
        "",
        "| metric | type | labels | meaning |",
        "|---|---|---|---|",
    ]
    for name, (kind, labels, text) in CATALOGUE.items():
        lines.append(f"| `{name}` | {kind.value} | {', '.join(labels) or '-'} | {text} |")
    lines += [
        "",
        "## Emitted on demand or by plugins",
        "",
        "| metric | type | labels | meaning | from |",
        "|---|---|---|---|---|",
    ]
    for name, (kind, labels, text, source) in EMITTED.items():
        lines.append(
            f"| `{name}` | {kind.value} | {', '.join(labels) or '-'} | {text} | {source} |"
        )
    lines += [
        "",
        "Histograms have cumulative buckets (`engine_order_span_seconds`: 10 µs to 1 h;",
        "the others 1 µs to 10 s) plus their sum and count. Resilience metrics appear",
        "once a policy has been used (an asynchronous venue in a paper or live run, or a",
        "plugin's `resilient(...)` call).",
    ]
    return "\n".join(lines) + "\n"


def _default(a: attrs.Attribute[Any]) -> str:
    if a.default is attrs.NOTHING:
        return "required"
    factory = getattr(a.default, "factory", None)
    if factory is not None:
        return f"`{factory()!r}`"
    return f"`{a.default!r}`"


def components_page() -> str:
    """Markdown for every built-in component: section, options (from the attrs
    config classes), types, defaults and documentation."""
    from engine.plugins import PluginManager, PluginSettings

    pm = PluginManager(PluginSettings(builtin_only=True))
    lines = [
        "# Built-in components",
        "",
        "Generated from the built-in plugins' records and config classes by",
        "`python -m engine.docs`; do not edit. A component is chosen in the config by",
        '`type = "name"`; its options are the other keys of its table.',
    ]
    for hook, section in _CONFIGURED.items():
        records = pm.collect(hook)
        if not records:
            continue
        lines += ["", f"## {section}"]
        for r in records:
            lines += ["", f"### `{r.name}` ({r.plugin})", ""]
            doc = inspect.getdoc(r.config_type) if r.config_type else None
            text = [t for t in (r.description, doc or inspect.getdoc(r.factory)) if t]
            lines.append("\n\n".join(dict.fromkeys(text)))
            if r.config_type is None:
                lines += ["", "No options."]
                continue
            hints = typing.get_type_hints(r.config_type)
            lines += ["", "| option | type | default |", "|---|---|---|"]
            for a in attrs.fields(r.config_type):
                kind = str(hints.get(a.name, a.type)).replace("typing.", "").replace("decimal.", "")
                kind = kind.replace("<class '", "").replace("'>", "").replace("|", "or")
                lines.append(f"| `{a.name}` | {kind} | {_default(a)} |")
    return "\n".join(lines) + "\n"


def hooks_page() -> str:
    """Markdown for every hook: signature, kind and docstring (with its example)."""
    lines = [
        "# Hooks",
        "",
        "Generated from `engine/hookspecs.py` by `python -m engine.docs`; do not edit.",
        "",
        "Record hooks take no arguments and return a list of records; the core calls",
        "each plugin's implementation separately, stamps `plugin`, validates and orders",
        "the records. Lifecycle hooks receive the engine and may be `async`.",
        "",
    ]
    names = sorted(n for n in dir(hookspecs) if n.startswith("engine_"))
    lines += [f"- [`{n}`](#{n})" for n in names]
    for name in names:
        fn = getattr(hookspecs, name)
        kind = (
            f"record hook, returns `{hookspecs.RECORD_HOOKS[name]}` records"
            if name in hookspecs.RECORD_HOOKS
            else "lifecycle hook"
        )
        signature = str(inspect.signature(fn)).replace("'", "")
        lines += [
            "",
            f"## {name}",
            "",
            f"`{name}{signature}`: {kind}.",
            "",
            inspect.getdoc(fn) or "",
        ]
    return "\n".join(lines) + "\n"


def _command_lines(cmd: click.Command, path: list[str], parent: click.Context | None) -> list[str]:
    # the command's own context settings (help option names...), as the CLI uses them
    ctx = click.Context(cmd, info_name=path[-1], parent=parent, **cmd.context_settings)
    usage = cmd.get_usage(ctx).removeprefix("Usage: ")
    lines = ["", f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`", "", "```", usage, "```", ""]
    lines.append(inspect.cleandoc(cmd.help or ""))
    params = [p for p in cmd.get_params(ctx) if p.get_help_record(ctx)]
    if params:
        lines.append("")
        for p in params:
            record = p.get_help_record(ctx)
            assert record is not None
            lines.append(f"- `{record[0]}`: {record[1]}")
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            lines += _command_lines(cmd.commands[name], [*path, name], ctx)
    return lines


def cli_page() -> str:
    """Markdown for every built-in command (plugins may add more at run time)."""
    from engine.cli import main as cli

    lines = [
        "# Command line",
        "",
        "Generated from `engine/cli.py` by `python -m engine.docs`; do not edit.",
        "Plugins may add commands through `engine_cli_commands`; `engine --help` lists them.",
        "",
        "Exit codes: 0 success; 2 a user mistake (config, data), printed as `path: problem`",
        "lines; 3 a plugin error in strict mode; 1 anything else.",
    ]
    lines += _command_lines(cli, ["engine"], None)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, verify) the generated pages under ``docs/``."""
    args = sys.argv[1:] if argv is None else argv
    docs = Path(args[args.index("--docs") + 1]) if "--docs" in args else Path("docs")
    pages = {
        docs / "hooks.md": hooks_page(),
        docs / "cli.md": cli_page(),
        docs / "components.md": components_page(),
        docs / "metrics.md": metrics_page(),
    }
    stale = [p for p, text in pages.items() if not p.exists() or p.read_text() != text]
    if "--check" in args:
        for p in stale:
            print(f"{p} is out of date: run python -m engine.docs", file=sys.stderr)
        return 1 if stale else 0
    docs.mkdir(parents=True, exist_ok=True)
    for p, text in pages.items():
        p.write_text(text)
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
