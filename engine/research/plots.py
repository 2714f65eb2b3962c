"""Figures for sweeps and walk-forward runs, drawn with matplotlib's object API (no
``pyplot`` state: safe in worker threads and scripts without a display)."""

from __future__ import annotations

from typing import Any

from engine.errors import EngineError

__all__ = ["figure_and_axes", "new_figure"]


def new_figure(figsize: tuple[float, float]) -> Any:
    """A matplotlib ``Figure`` (not attached to pyplot); a clear error without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise EngineError(
            "plots need matplotlib, which is not installed: pip install 'engine[plot]'"
        ) from None
    return Figure(figsize=figsize, layout="constrained")


def figure_and_axes(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    """``(figure, ax)``: a new figure with one axes, or the figure of ``ax``."""
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(figsize)
    return fig, fig.add_subplot()
