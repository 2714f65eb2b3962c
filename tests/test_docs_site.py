"""The documentation site: every page under docs/ is in the navigation, and
``mkdocs build --strict`` passes (a broken link or anchor, a page left out of the
navigation, a docstring mkdocstrings cannot render all fail it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


class _Loader(yaml.SafeLoader):
    """Reads mkdocs.yml: its tags (``!relative``, ``!ENV``) load as plain values."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def nav_pages(nav: Any) -> list[str]:
    """Every page path of an mkdocs ``nav`` (entries are paths or ``{title: entry}``)."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return []


def docs_pages() -> set[str]:
    return {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}


def test_every_page_is_in_the_navigation_and_every_entry_exists() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_Loader)
    listed = nav_pages(config["nav"])
    assert len(listed) == len(set(listed)), "a page is listed twice in mkdocs.yml"
    missing = sorted(docs_pages() - set(listed))
    assert not missing, f"add these pages to the nav of mkdocs.yml: {missing}"
    absent = sorted(set(listed) - docs_pages())
    assert not absent, f"mkdocs.yml lists pages that do not exist: {absent}"


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    site = tmp_path / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # paths in mkdocs.yml are relative to it, not to the caller
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    for page in docs_pages():  # a.md -> a/index.html, a/index.md -> a/index.html
        stem = page.removesuffix(".md").removesuffix("index")
        assert (site / stem / "index.html").exists(), f"{page} was not built"
    # the quick start includes the README's own text
    quickstart = (site / "quickstart" / "index.html").read_text()
    assert "backtests an SMA(10/30) crossover" in quickstart and "--8&lt;--" not in quickstart
    # a hook page shows its example; an API page renders its module's objects
    guards = (site / "hooks" / "engine_guards" / "index.html").read_text()
    assert "max_qty" in guards and "Risk guards" in guards
    records = (site / "api" / "engine.records" / "index.html").read_text()
    assert 'id="engine.records.Guard"' in records
