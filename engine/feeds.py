"""What the core hands to feeds: :class:`FeedContext`.

A module of its own, with no heavy imports, so a feed plugin that imports
``FeedContext`` for its annotations does not import the whole engine (and
``engine plugins`` stays fast). :mod:`engine.engine` re-exports it.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

__all__ = ["FeedContext"]


@attrs.frozen
class FeedContext:
    """What a feed gets besides its own config: where relative paths start, the
    run's seed and mode (``backtest`` or ``paper``)."""

    base_dir: Path
    seed: int
    mode: str

    def resolve_path(self, path: str | os.PathLike[str]) -> Path:
        """``path`` relative to the config file's folder (absolute paths unchanged)."""
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p
