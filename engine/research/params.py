"""Sweep parameters: what ``--grid PATH=VALUES`` means, and how a value reaches the config.

**Values** (the part after ``=``):

``5..20:5``
    an inclusive range with a step: ``5, 10, 15, 20``. Integers when the bounds and
    the step are integers; otherwise decimal steps computed exactly
    (``0.1..0.3:0.1`` is ``0.1, 0.2, 0.3``) and given to the config as floats.
``5..20``
    a range without a step: step 1 for integers in a grid; in random search, a
    uniform draw from the range (integers inclusive, or real numbers).
``20,30,50``
    a list. Items are integers, numbers, ``true``/``false``, or strings (quote
    them, ``"a,b"``, to keep commas or force a string).
``7``
    a single value (the parameter is fixed).

**Paths** (the part before ``=``) address keys of the TOML config:

``SECTION.KEY``
    a key of a table section: ``feed.bars``, ``broker.fee_bps``, ``engine.seed``.
    For an array of tables (``[[strategies]]``) with exactly one table the key is
    that table's; ``strategy`` is accepted for ``strategies``.
``SECTION[N].KEY``
    a key of the N-th table of an array (from 0): ``strategies[1].slow``.
``SECTION.NAME.KEY``
    a key of the table of the array whose ``id``, ``type`` or ``symbol`` is NAME:
    ``strategies.trend.fast``, ``guards.max_position.limit``.

Further dotted parts descend into nested tables. A key that the component does not
have is reported by the config check with the parameter's path
(``strategy.fsat: config.strategies[0].fsat: unknown key (did you mean 'fast'?)``).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
import numpy as np

from engine.errors import ConfigError, Problem

__all__ = [
    "ParamSpec",
    "address",
    "apply_params",
    "grid",
    "parse_param",
    "parse_params",
    "parse_values",
    "random_draws",
]

Scalar = int | float | bool | str

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^\s*({_NUMBER})\s*\.\.\s*({_NUMBER})\s*(?::\s*({_NUMBER}))?\s*$")
_PATH_PART = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\])*)$")
#: the config sections a sweep may not change
_NOT_SWEPT = {"sweep"}


def _error(where: str, message: str) -> ConfigError:
    return ConfigError([Problem(where, message)])


@attrs.frozen
class ParamSpec:
    """One parameter of a sweep: its config path and its values.

    Either ``values`` (a finite list, in order), or a range ``low..high`` with an
    optional ``step``. A range without a step is continuous for real numbers; for
    integers it means every integer from ``low`` to ``high``.
    """

    path: str
    values: tuple[Scalar, ...] | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    step: Decimal | None = None
    integer: bool = False

    @property
    def is_range(self) -> bool:
        """True for ``low..high[:step]``."""
        return self.values is None

    @property
    def finite(self) -> bool:
        """True when the parameter has a finite list of values."""
        return not self.is_range or self.integer or self.step is not None

    def choices(self) -> tuple[Scalar, ...]:
        """Every value, in order (a grid's axis). A real range needs a step."""
        if self.values is not None:
            return self.values
        assert self.low is not None and self.high is not None
        step = self.step
        if step is None:
            if not self.integer:
                raise _error(
                    self.path, f"the range {self.low}..{self.high} needs a step in a grid (a..b:s)"
                )
            step = Decimal(1)
        count = int((self.high - self.low) / step) + 1
        return tuple(self._number(self.low + k * step) for k in range(count))

    def draw(self, rng: np.random.Generator) -> Scalar:
        """One value drawn uniformly (random search)."""
        if self.finite:
            options = self.choices()
            return options[int(rng.integers(len(options)))]
        assert self.low is not None and self.high is not None
        return float(rng.uniform(float(self.low), float(self.high)))

    def _number(self, value: Decimal) -> Scalar:
        return int(value) if self.integer else float(value)

    def __str__(self) -> str:
        if self.values is not None:
            return f"{self.path}={','.join(json.dumps(v) for v in self.values)}"
        step = f":{self.step}" if self.step is not None else ""
        return f"{self.path}={self.low}..{self.high}{step}"


def _scalar(text: str) -> Scalar:
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
        return t[1:-1]
    if t in ("true", "false"):
        return t == "true"
    if re.fullmatch(r"[-+]?\d+", t):
        return int(t)
    if re.fullmatch(_NUMBER, t):
        value = float(t)
        if math.isfinite(value):
            return value
    return t


def _split_list(text: str) -> list[str]:
    """Split on commas outside quotes."""
    items, current, quote = [], "", ""
    for ch in text:
        if quote:
            current += ch
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            current += ch
        elif ch == ",":
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    return items


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits numbers only
        raise ValueError(text) from None
    return value


def _is_integral(text: str) -> bool:
    return re.fullmatch(r"[-+]?\d+", text) is not None


def parse_values(path: str, text: str) -> ParamSpec:
    """The values of one parameter (``5..20:5``, ``20,30,50``, ``7``); a
    :class:`ConfigError` naming ``path`` when they cannot be read."""
    where = path
    if not text.strip():
        raise _error(where, "no values given (expected a..b:step, a list v1,v2 or a value)")
    match = _RANGE.match(text)
    if match:
        low_t, high_t, step_t = match.groups()
        low, high = _decimal(low_t), _decimal(high_t)
        step = _decimal(step_t) if step_t is not None else None
        if not all(v.is_finite() for v in (low, high, *(() if step is None else (step,)))):
            raise _error(where, f"range bounds must be finite numbers, got {text!r}")
        if low > high:
            raise _error(where, f"empty range {text.strip()!r}: the start is above the end")
        if step is not None and step <= 0:
            raise _error(where, f"the step must be > 0, got {step_t}")
        integer = all(_is_integral(t) for t in (low_t, high_t, step_t) if t is not None)
        spec = ParamSpec(path, low=low, high=high, step=step, integer=integer)
        if spec.finite and (high - low) / (step or 1) >= 1_000_000:
            raise _error(where, f"the range {text.strip()!r} has more than a million values")
        return spec
    items = _split_list(text)
    if any(not item.strip() for item in items):
        raise _error(where, f"empty item in the list {text!r}")
    return ParamSpec(path, values=tuple(_scalar(item) for item in items))


def parse_param(text: str) -> ParamSpec:
    """``PATH=VALUES`` (one ``--grid`` option) into a :class:`ParamSpec`."""
    path, sep, values = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise _error(
            f"--grid {text!r}", "expected PATH=VALUES, e.g. strategy.fast=5..20:5 or slow=20,30"
        )
    _parse_path(path)
    return parse_values(path, values)


def parse_params(specs: Sequence[str] | Mapping[str, Any]) -> list[ParamSpec]:
    """Several parameters: ``["a.b=1..3", ...]`` or a mapping ``{"a.b": "1..3"}``
    whose values may also be lists of values. Paths must be distinct."""
    parsed: list[ParamSpec] = []
    if isinstance(specs, Mapping):
        for path, value in specs.items():
            _parse_path(path)
            if isinstance(value, str):
                parsed.append(parse_values(path, value))
            elif isinstance(value, Sequence):
                items = tuple(value)
                if not items:
                    raise _error(path, "no values given")
                parsed.append(ParamSpec(path, values=items))
            else:
                parsed.append(ParamSpec(path, values=(value,)))
    else:
        parsed = [parse_param(s) for s in specs]
    seen: set[str] = set()
    for p in parsed:
        if p.path in seen:
            raise _error(p.path, "given twice")
        seen.add(p.path)
    return parsed


def grid(params: Sequence[ParamSpec]) -> list[dict[str, Scalar]]:
    """Every combination, the last parameter varying fastest."""
    axes = [p.choices() for p in params]
    return [dict(zip([p.path for p in params], combo, strict=True)) for combo in _product(axes)]


def _product(axes: Sequence[Sequence[Scalar]]) -> Iterator[tuple[Scalar, ...]]:
    return itertools.product(*axes)


def random_draws(params: Sequence[ParamSpec], n: int, seed: int) -> list[dict[str, Scalar]]:
    """``n`` combinations drawn with ``seed``: distinct when every parameter is
    finite (the whole grid when it has at most ``n`` combinations), else drawn
    independently (continuous ranges)."""
    if n <= 0:
        raise _error("--random", f"must be > 0, got {n}")
    rng = np.random.default_rng(seed)
    if all(p.finite for p in params):
        sizes = [len(p.choices()) for p in params]
        total = math.prod(sizes)
        if total <= n:
            return grid(params)
        picked = sorted(_distinct_indices(rng, total, n))
        combos = []
        for flat in picked:
            combo: dict[str, Scalar] = {}
            rest = flat
            for p, size in zip(reversed(params), reversed(sizes), strict=True):
                rest, k = divmod(rest, size)
                combo[p.path] = p.choices()[k]
            combos.append({p.path: combo[p.path] for p in params})
        return combos
    return [{p.path: p.draw(rng) for p in params} for _ in range(n)]


def _distinct_indices(rng: np.random.Generator, total: int, n: int) -> list[int]:
    """``n`` distinct integers below ``total`` (``n < total``)."""
    if total <= 5_000_000:
        return [int(i) for i in rng.choice(total, size=n, replace=False)]
    chosen: dict[int, None] = {}
    while len(chosen) < n:  # n is far below total: few repeats
        chosen[int(rng.integers(total))] = None
    return list(chosen)


# -- addressing the config -----------------------------------------------------------

_ALIASES = {"strategy": "strategies"}


def _parse_path(path: str) -> list[str | int]:
    """``strategies[1].fast`` -> ``["strategies", 1, "fast"]``."""
    parts: list[str | int] = []
    for piece in path.split("."):
        match = _PATH_PART.match(piece)
        if not match:
            raise _error(
                path,
                "expected a dotted path of config keys like strategy.fast,"
                " strategies[0].fast or feed.bars",
            )
        parts.append(match.group(1))
        parts += [int(i) for i in re.findall(r"\[(\d+)\]", match.group(2))]
    if len(parts) < 2:
        raise _error(path, "expected SECTION.KEY (a key inside a config section)")
    return parts


def _entry_names(entry: Any) -> list[str]:
    if not isinstance(entry, Mapping):
        return []
    return [str(entry[k]) for k in ("id", "type", "symbol") if k in entry]


def address(data: Mapping[str, Any], path: str) -> list[str | int]:
    """The concrete key path in the raw config ``data`` that ``path`` names
    (``strategy.fast`` -> ``["strategies", 0, "fast"]``); a :class:`ConfigError`
    naming ``path`` when it names nothing."""
    parts = _parse_path(path)
    section = parts[0]
    assert isinstance(section, str)
    if section not in data and section in _ALIASES:
        section = _ALIASES[section]
    if section in _NOT_SWEPT:
        raise _error(path, f"the [{section}] section cannot be swept")
    out: list[str | int] = [section]
    rest = parts[1:]
    value = data.get(section)
    if isinstance(value, list):
        head = rest[0]
        if isinstance(head, int):
            if head >= len(value):
                raise _error(
                    path,
                    f"config.{section} has {len(value)} table(s); index {head} is out of range",
                )
            out.append(head)
            rest = rest[1:]
        else:
            named = [i for i, entry in enumerate(value) if head in _entry_names(entry)]
            if len(named) == 1 and len(rest) > 1:
                out.append(named[0])
                rest = rest[1:]
            elif len(named) > 1 and len(rest) > 1:
                raise _error(
                    path,
                    f"{len(named)} tables of config.{section} are named {head!r};"
                    f" address one by index: {section}[N].{'.'.join(map(str, rest[1:]))}",
                )
            elif len(value) == 1:
                out.append(0)
            else:
                names = ", ".join(
                    f"{section}[{i}] ({'/'.join(_entry_names(e)) or '?'})"
                    for i, e in enumerate(value)
                )
                raise _error(
                    path,
                    f"config.{section} has {len(value)} tables; choose one by index or by id,"
                    f" type or symbol: {names}",
                )
    elif isinstance(rest[0], int):
        raise _error(path, f"config.{section} is not an array of tables")
    if not rest:
        raise _error(path, "expected a key after the table")
    for part in rest:
        if isinstance(part, int):
            raise _error(path, "indexes are allowed only on arrays of tables")
        out.append(part)
    return out


def apply_params(data: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the raw config ``data`` with each parameter's value set."""
    out: dict[str, Any] = copy.deepcopy(dict(data))
    for path, value in params.items():
        keys = address(out, path)
        node: Any = out
        walked = ""
        for k, key in enumerate(keys[:-1]):
            walked += f"[{key}]" if isinstance(key, int) else f".{key}"
            if isinstance(key, int):
                node = node[key]
                continue
            if key not in node:
                node[key] = {}
            elif not isinstance(node[key], dict | list):
                raise _error(path, f"config{walked} is a value, not a table")
            node = node[key]
            if isinstance(node, list) and not isinstance(keys[k + 1], int):
                raise _error(path, f"config{walked} is an array of tables")
        last = keys[-1]
        assert isinstance(last, str)
        if not isinstance(node, dict):
            raise _error(path, f"config{walked} is not a table")
        node[last] = value
    return out


def config_path(data: Mapping[str, Any], path: str) -> str:
    """The ``config.strategies[0].fast`` form of a parameter path (for messages)."""
    text = "config"
    for key in address(data, path):
        text += f"[{key}]" if isinstance(key, int) else f".{key}"
    return text
