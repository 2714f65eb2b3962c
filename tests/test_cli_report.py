"""``engine backtest --html`` and ``engine run --html``: a self-contained report file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = str(Path(sys.executable).with_name("engine"))


def engine(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENGINE, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=180
    )


def small_config(tmp_path: Path) -> Path:
    """examples/sma_crossover.toml on two weeks of bars instead of a year."""
    text = (ROOT / "examples" / "sma_crossover.toml").read_text()
    assert "bars = 525600" in text
    path = tmp_path / "small.toml"
    path.write_text(text.replace("bars = 525600", "bars = 20000"))
    return path


def test_backtest_writes_a_self_contained_html_report(tmp_path: Path) -> None:
    report = tmp_path / "reports" / "sma.html"
    proc = engine("backtest", str(small_config(tmp_path)), "--no-progress", "--html", str(report))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {report}" in proc.stdout
    page = report.read_text(encoding="utf-8")
    assert "<title>sma-crossover: backtest report</title>" in page
    assert "<tr><th>bars</th><td>20,000</td></tr>" in page
    final = re.search(r"│ final equity +│ +([\d,.]+) │", proc.stdout)
    assert final is not None and f"<tr><th>final equity</th><td>{final[1]}</td></tr>" in page
    assert page.count("<svg") == 1 and '<g id="FillBetweenPolyCollection_' in page
    assert re.search(r"first 20 of [\d,]+ trades", page)
    assert not re.search(r"https?:|<script|<link|<img", page)


def test_json_output_stays_json_with_html(tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    proc = engine("backtest", str(small_config(tmp_path)), "--json", "--html", str(report))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.lstrip().startswith("{") and "wrote" not in proc.stdout
    assert report.stat().st_size > 10_000


def test_paper_run_writes_an_html_report(tmp_path: Path) -> None:
    report = tmp_path / "paper.html"
    proc = engine(
        "run",
        "examples/paper.toml",
        "--paper",
        "--speed",
        "50",
        "--max-bars",
        "40",
        "--html",
        str(report),
    )
    assert proc.returncode == 0, proc.stderr
    page = report.read_text(encoding="utf-8")
    assert "<title>paper-demo: paper report</title>" in page and "<svg" in page
    assert "<tr><th>bars</th><td>40</td></tr>" in page


def test_without_matplotlib_html_fails_before_the_run_with_what_to_install(
    tmp_path: Path,
) -> None:
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)  # an import of matplotlib fails, as if not installed
    (shadow / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    report = tmp_path / "r.html"
    proc = engine("backtest", "examples/sma_crossover.toml", "--html", str(report), env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "charts need matplotlib, which is not installed: pip install 'engine[plot]'"
    )
    assert proc.stdout == "" and not report.exists()  # the year-long run never started
