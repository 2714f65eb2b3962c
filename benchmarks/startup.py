"""Start-up time with 20 installed plugin distributions (target 6).

    python -m benchmarks.startup [--quick] [--plugins 20] [--runs 5]

Builds a throwaway virtualenv layered over this interpreter's site-packages (the
dev install of the engine and its dependencies are seen, nothing is downloaded:
the same set-up as the Prometheus plugin's install test), installs ``--plugins``
generated plugin distributions into it (each a ``.dist-info`` with an ``engine``
entry point, and a module with a strategy record and a config class, written
straight into site-packages as an installer would), writes the ``engine``
console script as pip writes it, and times, in fresh processes:

* ``python -c "import engine"``
* ``engine --help``
* ``engine plugins``

Each command runs once to warm the file cache and byte-code, then ``--runs``
times (default 5); the median wall time is reported, beside the bare
interpreter's start-up (``python -c pass``) measured the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import site
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import common

#: (figure, command after the interpreter or script, limit in ms)
COMMANDS = (
    ("import engine", ["-c", "import engine"], 150),
    ("engine --help", ["--help"], 300),
    ("engine plugins", ["plugins"], 600),
)

PLUGIN_MODULE = '''"""Generated plugin {k} of the start-up benchmark."""

import attrs

from engine import Strategy, hookimpl


@attrs.frozen
class Config:
    """Options of the generated strategy."""

    quantity: int = 1


class Idle:
    """A strategy that never trades."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def on_bar(self, bar: object) -> None:
        """Nothing to do."""


@hookimpl
def engine_strategies() -> list[Strategy]:
    """One strategy record."""
    return [Strategy(name="idle_{k}", factory=Idle, config_type=Config)]
'''

SCRIPT = """#!{python}
import sys
from engine.cli import main
if __name__ == '__main__':
    sys.argv[0] = sys.argv[0].removesuffix('.exe')
    sys.exit(main())
"""


def make_venv(root: Path) -> Path:
    """A virtualenv (no pip of its own) that sees this interpreter's packages; returns
    its site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    (target,) = root.glob("lib/python3*/site-packages")
    outer = [p for p in site.getsitepackages() if Path(p).is_dir()]
    lines = [f"import site; site.addsitedir({p!r})" for p in outer]
    (target / "_outer_site.pth").write_text("\n".join(lines) + "\n")
    script = root / "bin" / "engine"
    script.write_text(SCRIPT.format(python=root / "bin" / "python"))
    script.chmod(0o755)
    return target


def install_plugins(site_packages: Path, count: int) -> list[str]:
    """Write ``count`` plugin distributions into ``site_packages``; their names."""
    names = []
    for k in range(count):
        dist = f"engine-dummy-plugin-{k:02d}"
        module = f"engine_dummy_plugin_{k:02d}"
        name = f"dummy_{k:02d}"
        (site_packages / f"{module}.py").write_text(PLUGIN_MODULE.format(k=f"{k:02d}"))
        info = site_packages / f"{module}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\nRequires-Dist: engine\n"
        )
        (info / "entry_points.txt").write_text(f"[engine]\n{name} = {module}\n")
        (info / "INSTALLER").write_text("benchmark\n")
        (info / "RECORD").write_text(
            f"{module}.py,,\n{info.name}/METADATA,,\n{info.name}/entry_points.txt,,\n"
            f"{info.name}/INSTALLER,,\n{info.name}/RECORD,,\n"
        )
        names.append(name)
    return names


def timed(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, list[float], str]:
    """(median ms, every run in ms, the last run's stdout) of ``runs`` runs after one
    warm-up run; a command that fails raises."""
    out = ""
    times = []
    for k in range(runs + 1):
        started = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        elapsed = (time.perf_counter() - started) * 1000
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
        if k:
            times.append(elapsed)
        out = proc.stdout
    return statistics.median(times), times, out


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every row of the scenario."""
    count = args.plugins
    runs = 3 if args.quick and args.runs is None else (args.runs or 5)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    env["COLUMNS"] = "200"
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "env"
        names = install_plugins(make_venv(root), count)
        python = str(root / "bin" / "python")
        bare, _, _ = timed([python, "-c", "pass"], env, runs)
        rows = []
        listed: dict[str, Any] = {}
        for figure, tail, limit in COMMANDS:
            cmd = [python, *tail] if tail[0] == "-c" else [str(root / "bin" / "engine"), *tail]
            median, times, _ = timed(cmd, env, runs)
            rows.append(
                common.row(
                    "6",
                    f"{count} plugin distributions installed",
                    figure,
                    round(median, 1),
                    "ms",
                    reference="python -c pass",
                    reference_value=round(bare, 1),
                    ratio=median / bare,
                    limit=f"< {limit} ms (median of {runs})",
                    met=median < limit,
                    note="runs: " + ", ".join(f"{t:.0f}" for t in times),
                )
            )
        out = subprocess.run(
            [str(root / "bin" / "engine"), "plugins", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        listed = {p["name"]: p for p in json.loads(out)}
        loaded = [n for n in names if listed.get(n, {}).get("status") == "loaded"]
        rows.append(
            common.row(
                "6",
                f"{count} plugin distributions installed",
                "identical: every generated plugin listed as loaded by engine plugins",
                len(loaded),
                "plugins",
                limit=f"= {count}",
                met=len(loaded) == count,
            )
        )
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This scenario's options."""
    parser.add_argument("--plugins", type=int, default=20, help="plugin distributions")
    parser.add_argument("--runs", type=int, default=None, help="timed runs of each command")


def main(argv: list[str] | None = None) -> int:
    """Run the scenario (see the module's docstring)."""
    return common.scenario_main(__doc__ or "", measure, add_arguments, argv)


if __name__ == "__main__":
    sys.exit(main())
