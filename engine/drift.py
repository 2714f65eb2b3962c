"""Config drift: what changed between two configurations, and which changes a running
engine may apply (risk limits) or must leave for a restart.

``Engine.reload()`` (``SIGHUP`` to ``engine run``, or ``engine reload PID``) reads the
config file again, validates it whole, reports every change against the running
config, applies the risk-limit changes (order checks, runtime guards, the trading
section) and journals them; other changes are reported as needing a restart. On a
restart the effective config is compared with the journal's baseline the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from engine.errors import Problem

__all__ = ["RISK_SECTIONS", "Change", "Reload", "diff"]

#: Sections a running engine applies on reload.
RISK_SECTIONS = frozenset({"filters", "validation_rules", "guards", "runtime_guards", "trading"})


@frozen
class Change:
    """One value that differs: ``path`` like ``guards[0].limit``; ``old``/``new`` are
    ``None`` when the key is absent on that side."""

    path: str
    old: Any
    new: Any

    @property
    def section(self) -> str:
        """The top-level section the change is in."""
        return self.path.split(".", 1)[0].split("[", 1)[0]

    def __str__(self) -> str:
        return f"{self.path}: {_show(self.old)} -> {_show(self.new)}"


@frozen
class Reload:
    """What a reload found and did."""

    changes: tuple[Change, ...] = ()
    applied: tuple[Change, ...] = ()
    needs_restart: tuple[Change, ...] = ()
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        """The new config was valid."""
        return not self.problems

    def lines(self) -> list[str]:
        """One line per problem or change, saying what happened to it."""
        if self.problems:
            return [f"refused (config invalid): {p}" for p in self.problems]
        out = [f"applied: {c}" for c in self.applied]
        out += [f"needs a restart: {c}" for c in self.needs_restart]
        return out or ["no change"]


def diff(old: Any, new: Any, path: str = "") -> list[Change]:
    """Every leaf that differs between two plain-data trees (dicts, lists, scalars)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[Change] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(Change(sub, None, new[key]))
            elif key not in new:
                out.append(Change(sub, old[key], None))
            else:
                out += diff(old[key], new[key], sub)
        return out
    if isinstance(old, list | tuple) and isinstance(new, list | tuple):
        out = []
        for k in range(max(len(old), len(new))):
            sub = f"{path}[{k}]"
            if k >= len(old):
                out.append(Change(sub, None, new[k]))
            elif k >= len(new):
                out.append(Change(sub, old[k], None))
            else:
                out += diff(old[k], new[k], sub)
        return out
    return [] if _same(old, new) else [Change(path, old, new)]


def _same(a: Any, b: Any) -> bool:
    return a == b or str(a) == str(b)


def _show(value: Any) -> str:
    return "(absent)" if value is None else repr(value) if isinstance(value, str) else str(value)
