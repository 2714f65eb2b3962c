"""A small transition-table state machine shared by orders, trading state and breakers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Generic, TypeVar

from engine.errors import IllegalTransition

__all__ = ["TransitionTable"]

S = TypeVar("S", bound=Enum)


class TransitionTable(Generic[S]):
    """The legal transitions between the members of one enum.

    >>> from enum import Enum
    >>> class Light(Enum):
    ...     RED = 1
    ...     GREEN = 2
    >>> table = TransitionTable("light", {Light.RED: [Light.GREEN], Light.GREEN: [Light.RED]})
    >>> table.check(Light.RED, Light.GREEN)
    """

    def __init__(self, name: str, transitions: Mapping[S, Iterable[S]]) -> None:
        self.name = name
        self._allowed: dict[S, frozenset[S]] = {k: frozenset(v) for k, v in transitions.items()}

    def allowed(self, src: S) -> frozenset[S]:
        """The states reachable from ``src`` in one step."""
        return self._allowed.get(src, frozenset())

    def is_terminal(self, state: S) -> bool:
        """True when no transition leaves ``state``."""
        return not self._allowed.get(state)

    def check(self, src: S, dst: S) -> None:
        """Raise :class:`IllegalTransition` unless ``src -> dst`` is legal."""
        if dst not in self._allowed.get(src, frozenset()):
            raise IllegalTransition(
                f"illegal {self.name} transition {src.name} -> {dst.name}",
                allowed=sorted(s.name for s in self.allowed(src)) or "none (terminal)",
            )
