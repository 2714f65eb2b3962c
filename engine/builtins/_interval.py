"""Parse bar intervals such as ``250ms``, ``1s``, ``1m``, ``4h``, ``1d``."""

from __future__ import annotations

import re

_UNITS = {
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}
_PATTERN = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")


def parse_interval(text: str) -> int:
    """Nanoseconds in ``text``; ``ValueError`` with the accepted forms otherwise."""
    match = _PATTERN.match(text)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"expected an interval like 250ms, 1s, 1m, 4h or 1d, got {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def check_interval(_inst: object, _attr: object, value: str) -> None:
    """attrs validator for interval strings."""
    parse_interval(value)
