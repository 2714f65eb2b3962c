"""Throwaway virtual environments for tests that ``pip install`` a package for real.

:func:`overlay_venv` makes a virtualenv with no packages of its own that sees the
running interpreter's site packages (the engine and its dependencies, without a
download): a package installed into it lands in the virtualenv only, and goes
away with it. ``exclude`` hides top-level names of the outer environment, e.g.
``exclude=("pip",)`` for an environment without pip.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["overlay_venv", "venv_python"]


def venv_python(root: Path) -> Path:
    """The interpreter of the virtualenv at ``root``."""
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _hidden(name: str, exclude: Iterable[str]) -> bool:
    for top in exclude:
        norm = top.replace("-", "_").lower()
        entry = name.lower()
        if entry in (norm, f"{norm}.py") or (
            entry.startswith(f"{norm}-") and entry.endswith((".dist-info", ".egg-info"))
        ):
            return True
    return False


def overlay_venv(root: Path, *, exclude: Iterable[str] = ()) -> Path:
    """Create a virtualenv at ``root`` (without pip of its own) layered over this
    interpreter's site packages, minus the top-level names in ``exclude``; returns
    its Python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    (target,) = list(root.glob("lib/python3*/site-packages")) or list(
        root.glob("Lib/site-packages")
    )
    outer = [Path(p) for p in site.getsitepackages() if Path(p).is_dir()]
    hide = tuple(exclude)
    if hide:  # a folder of links to every outer entry but the hidden ones
        shadow = root / "outer-site-packages"
        shadow.mkdir()
        for folder in outer:
            for entry in folder.iterdir():
                link = shadow / entry.name
                if not _hidden(entry.name, hide) and not link.exists():
                    link.symlink_to(entry)
        outer = [shadow]
    lines = [f"import site; site.addsitedir({str(p)!r})" for p in outer]
    (target / "_outer_site.pth").write_text("\n".join(lines) + "\n")
    return venv_python(root)
