"""Run every benchmark scenario and print one table.

    python -m benchmarks [--quick] [--only NAME ...] [--json results.json]

Each scenario module runs in its own process (so its peak RSS is its own) and
reports rows: the figure, the reference it is compared with in the same run (the
plain CPython loop, the numpy loop, the same engine without the feature), their
ratio and the target. ``--quick`` runs smaller sizes (CI's smoke run); the targets
are judged on the full sizes. Exit code 1 when a correctness check failed (trades
not identical); a missed performance target is reported, not an error.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Scenario modules, in the order of the performance issue's targets.
SCENARIOS = (
    "backtest_throughput",  # targets 1, 2 and 7
    "scaling",  # target 3
    "multi_instrument",  # target 4
    "paper_latency",  # target 5
    "startup",  # target 6
    "journal_replay",  # issue 5: replay reproduces the report
)

ROOT = Path(__file__).resolve().parent.parent


def run_scenario(name: str, quick: bool) -> tuple[list[dict[str, Any]], int, str]:
    """(rows, exit code, captured output) of one scenario module in a child process."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "rows.json"
        cmd = [sys.executable, "-m", f"benchmarks.{name}", "--rows-json", str(out)]
        if quick:
            cmd.append("--quick")
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        try:
            rows = json.loads(out.read_text()) if out.exists() else []
        except ValueError as exc:  # a scenario that failed while writing its rows
            return [], proc.returncode or 1, f"{proc.stdout}{proc.stderr}\nrows: {exc}"
        return rows, proc.returncode, proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run only these")
    parser.add_argument("--json", dest="json_path", help="also write every row here")
    args = parser.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    for name in args.only or SCENARIOS:
        started = time.perf_counter()
        with console.status(f"benchmark {name}..."):
            got, code, output = run_scenario(name, args.quick)
        console.print(f"{name}: {time.perf_counter() - started:.0f} s, exit {code}")
        if code != 0:
            failed.append(name)
            console.print(output[-4000:], markup=False, highlight=False)
        for r in got:
            r["module"] = name
        rows += got
    table = Table(title="python -m benchmarks" + (" --quick" if args.quick else ""))
    for col in ("#", "scenario", "figure", "value", "reference (same run)", "ratio", "target", ""):
        table.add_column(col, overflow="fold")
    for r in rows:
        value = r["value"]
        if isinstance(value, bool):
            shown = "yes" if value else "NO"
        else:
            shown = f"{value:,}" if isinstance(value, int | float) else str(value)
        ref = f"{r['reference']}: {r['reference_value']:,}" if r["reference"] else ""
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        verdict = {True: "[green]met", False: "[red]missed", None: ""}[r["met"]]
        table.add_row(
            r["target"], r["scenario"], r["figure"], f"{shown} {r['unit']}", ref, ratio,
            r["limit"], verdict,
        )  # fmt: skip
    console.print(table)
    if args.json_path:
        doc = {
            "quick": args.quick,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "rows": rows,
            "failed": failed,
        }
        Path(args.json_path).write_text(json.dumps(doc, indent=2))
    if failed:
        console.print(f"[red]failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
