"""examples/research.ipynb runs headless on a real IPython kernel of this interpreter,
with fewer bars, and saves a real PNG of its equity chart."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "research.ipynb"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec whose kernel is this interpreter (the venv with the engine),
    found first on JUPYTER_PATH; Jupyter's and IPython's state go to tmp_path."""
    name = "engine-test"
    spec = tmp_path / "jupyter" / "kernels" / name
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "engine tests", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    return name


def texts(cell: Any) -> str:
    """Everything a cell showed: streams, plain text and HTML."""
    parts = []
    for out in cell.get("outputs", ()):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        data = out.get("data", {})
        parts += [data.get("text/plain", ""), data.get("text/html", "")]
    return "\n".join(parts)


def test_the_notebook_executes_and_saves_its_equity_plot(
    kernel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    plot = tmp_path / "out" / "equity.png"
    plot.parent.mkdir()
    monkeypatch.setenv("RESEARCH_BARS", "12000")
    monkeypatch.setenv("RESEARCH_PLOT", str(plot))
    monkeypatch.setenv("RESEARCH_DATA", str(tmp_path / "data"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")  # kept clean
    # first, prove the kernel is this interpreter
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    client = NotebookClient(
        nb, kernel_name=kernel, timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # CellExecutionError (the cell and its traceback) on any error

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert texts(code[0]).strip() == sys.executable
    errors = [o for c in code for o in c.outputs if o["output_type"] == "error"]
    assert not errors
    shown = "\n".join(texts(c) for c in code)
    assert "Traceback" not in shown
    assert "sma 10/30: backtest report" in shown and "first 10 of" in shown  # the report
    assert "<tr><th>bars</th><td>12,000</td></tr>" in shown
    data = plot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 20_000
    width, height = struct.unpack(">II", data[16:24])  # IHDR: the figure at dpi 100
    assert (width, height) == (1000, 600)
    comparison = next(texts(c) for c in code if "comparison" in c.source.splitlines()[-1])
    assert "fast 10 / slow 30" in comparison and "fast 30 / slow 120" in comparison
    assert "sharpe" in comparison and "final_equity" in comparison
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the report's figure and the comparison's, shown inline
    assert (tmp_path / "data" / "report.html").read_text().count("<svg") == 1
