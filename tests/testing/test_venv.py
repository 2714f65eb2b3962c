"""engine.testing.venv: a throwaway virtualenv over this interpreter's packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.testing.venv import overlay_venv

PROBE = (
    "import importlib.util as u, sys; "
    "print(sys.prefix, u.find_spec('pip') is not None, u.find_spec('engine') is not None)"
)


def probe(python: Path) -> list[str]:
    out = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_the_venv_sees_the_outer_packages_and_has_its_own_prefix(tmp_path: Path) -> None:
    python = overlay_venv(tmp_path / "venv")
    assert python == tmp_path / "venv" / "bin" / "python"
    assert probe(python) == [str(tmp_path / "venv"), "True", "True"]
    assert sys.prefix != str(tmp_path / "venv")


def test_excluded_names_are_hidden(tmp_path: Path) -> None:
    python = overlay_venv(tmp_path / "venv", exclude=("pip",))
    assert probe(python) == [str(tmp_path / "venv"), "False", "True"]
    shadow = tmp_path / "venv" / "outer-site-packages"
    names = {p.name for p in shadow.iterdir()}
    assert "pip" not in names and not any(n.startswith("pip-") for n in names)
    assert "engine" in {n.split("-")[0] for n in names} or any("engine" in n for n in names)
