"""Resilience settings: the ``[resilience]`` config table.

``[resilience.default]`` holds the settings every policy starts from;
``[resilience.plugins.NAME]`` overrides them for one plugin, with only the keys it
changes::

    [resilience.default]
    timeout = "10s"
    retries = 3

    [resilience.plugins.myvenue]
    rate = 5.0          # 5 calls a second, the rest as in [resilience.default]
    burst = 10

Use :func:`parse_resilience` to read the table: it merges each plugin table over
the default and reports every problem as ``path: problem`` in one
:class:`~engine.errors.ConfigError`.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from attrs import field, frozen

from engine.errors import ConfigError, Problem

__all__ = [
    "BREAKER_OPEN_ACTIONS",
    "ResilienceSection",
    "ResilienceSettings",
    "interval_or_zero",
    "parse_resilience",
    "seconds",
]

# engine.config is imported when first used, not at import time: engine.config may
# import this module to declare the [resilience] section.
_Validator = Callable[[object, "attrs.Attribute[Any]", Any], None]


def _engine_config() -> Any:
    return importlib.import_module("engine.config")


def _config_validator(name: str) -> _Validator:
    """engine.config's validator ``name`` (the messages of every other section)."""

    def check(inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        _engine_config().__dict__[name](inst, attribute, value)

    check.__name__ = check.__qualname__ = name
    return check


_positive = _config_validator("positive")
_non_negative = _config_validator("non_negative")
_interval = _config_validator("interval")


def _parse_interval(text: str) -> int:
    ns: int = _engine_config().parse_interval(text)
    return ns


#: What the engine does to its trading state when a breaker opens.
BREAKER_OPEN_ACTIONS = ("halted", "reducing")

_ZERO = re.compile(r"^\s*0+\s*(ms|s|m|h|d)?\s*$")


def seconds(text: str) -> float:
    """Seconds in an interval string (``"250ms"`` -> 0.25); ``"0s"`` (or ``"0"``) is 0."""
    if _ZERO.match(text):
        return 0.0
    return _parse_interval(text) / 1e9


def interval_or_zero(_inst: object, _attr: object, value: str) -> None:
    """attrs validator: an interval string such as ``250ms`` or ``1s``, or zero (``0s``)."""
    if not isinstance(value, str):
        raise ValueError(f"expected an interval like 0s, 250ms or 1s, got {value!r}")
    if _ZERO.match(value):
        return
    try:
        _parse_interval(value)
    except ValueError:
        raise ValueError(f"expected an interval like 0s, 250ms, 1s or 1m, got {value!r}") from None


def _one_of(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in BREAKER_OPEN_ACTIONS:
        choices = " or ".join(repr(a) for a in BREAKER_OPEN_ACTIONS)
        raise ValueError(f"expected {choices}, got {value!r}")


@frozen
class ResilienceSettings:
    """The settings of one resilience policy (one ``[resilience.*]`` table).

    Intervals are strings (``"250ms"``, ``"10s"``, ``"1m"``); the ``*_seconds``
    properties give them as floats.
    """

    #: per attempt: an attempt that has not answered by then is cancelled
    timeout: str = field(default="10s", validator=_interval)
    #: retries of an idempotent call after the first attempt (attempts = retries + 1)
    retries: int = field(default=3, validator=_non_negative)
    #: first backoff between attempts; doubles each retry up to ``backoff_max``
    backoff_initial: str = field(default="100ms", validator=interval_or_zero)
    #: longest backoff between two attempts
    backoff_max: str = field(default="5s", validator=interval_or_zero)
    #: random extra wait added to each backoff, up to this much
    jitter: str = field(default="100ms", validator=interval_or_zero)
    #: consecutive failed calls that open the circuit breaker
    breaker_failures: int = field(default=5, validator=_positive)
    #: how long an open breaker rejects calls before it lets one trial call through
    breaker_reset: str = field(default="30s", validator=_interval)
    #: calls per second (token bucket); 0 means unlimited
    rate: float = field(default=0.0, validator=_non_negative)
    #: calls that may pass at once when the bucket is full
    burst: int = field(default=1, validator=_positive)
    #: longest wait for rate-limit capacity before the call is refused (``0s``: never wait)
    max_wait: str = field(default="1s", validator=interval_or_zero)
    #: calls in flight at once
    max_concurrent: int = field(default=16, validator=_positive)
    #: calls waiting for a free slot; one more is rejected at once
    max_queue: int = field(default=64, validator=_non_negative)
    #: trading state the engine moves to when this breaker opens
    on_breaker_open: str = field(default="halted", validator=_one_of)

    def __attrs_post_init__(self) -> None:
        try:
            low, high = seconds(self.backoff_initial), seconds(self.backoff_max)
        except ValueError:
            return  # the field's own validator reports it
        if low > high:
            raise ValueError(
                f"backoff_initial ({self.backoff_initial}) must not exceed"
                f" backoff_max ({self.backoff_max})"
            )

    @property
    def attempts(self) -> int:
        """Attempts of an idempotent call: ``retries + 1``."""
        return self.retries + 1

    @property
    def timeout_seconds(self) -> float:
        """``timeout`` in seconds."""
        return seconds(self.timeout)

    @property
    def backoff_initial_seconds(self) -> float:
        """``backoff_initial`` in seconds."""
        return seconds(self.backoff_initial)

    @property
    def backoff_max_seconds(self) -> float:
        """``backoff_max`` in seconds."""
        return seconds(self.backoff_max)

    @property
    def jitter_seconds(self) -> float:
        """``jitter`` in seconds."""
        return seconds(self.jitter)

    @property
    def breaker_reset_seconds(self) -> float:
        """``breaker_reset`` in seconds."""
        return seconds(self.breaker_reset)

    @property
    def max_wait_seconds(self) -> float:
        """``max_wait`` in seconds."""
        return seconds(self.max_wait)


@frozen
class ResilienceSection:
    """``[resilience]``: the default policy settings and per-plugin overrides.

    ``plugins`` holds complete settings (each plugin table merged over
    ``default`` by :func:`parse_resilience`).
    """

    default: ResilienceSettings = field(factory=ResilienceSettings)
    plugins: Mapping[str, ResilienceSettings] = field(factory=dict)

    def settings_for(self, plugin: str) -> ResilienceSettings:
        """The settings of ``plugin``'s policy: its override, else the default."""
        return self.plugins.get(plugin, self.default)


_SECTION_KEYS = tuple(a.name for a in attrs.fields(ResilienceSection))


def _unknown(path: str, key: str, known: tuple[str, ...]) -> Problem:
    hint = difflib.get_close_matches(key, known, n=1)
    text = f"unknown key (did you mean {hint[0]!r}?)" if hint else "unknown key"
    if not hint:
        text += f"; known keys: {', '.join(known)}"
    return Problem(f"{path}.{key}", text)


def parse_resilience(raw: Mapping[str, Any], path: str = "config.resilience") -> ResilienceSection:
    """Structure the ``[resilience]`` table, merging each plugin table over the default.

    Raises :class:`~engine.errors.ConfigError` listing every problem, each as
    ``path: problem`` (``config.resilience.plugins.myvenue.retries: must be >= 0,
    got -1``); unknown keys get a did-you-mean hint.
    """
    from engine.config import converter, structure

    if not isinstance(raw, Mapping):
        raise ConfigError([Problem(path, "expected a table ([resilience])")])
    problems: list[Problem] = []
    for key in raw:
        if key not in _SECTION_KEYS:
            problems.append(_unknown(path, str(key), _SECTION_KEYS))

    default_raw = raw.get("default", {})
    default: ResilienceSettings | None = None
    if isinstance(default_raw, Mapping):
        default, more = structure(default_raw, ResilienceSettings, f"{path}.default")
        problems += more
    else:
        problems.append(Problem(f"{path}.default", "expected a table ([resilience.default])"))
    # plugin tables are checked against the class defaults when the default is broken,
    # so each problem is reported once, where it is
    base = default if default is not None else ResilienceSettings()
    base_raw: dict[str, Any] = converter.unstructure(base)

    plugins: dict[str, ResilienceSettings] = {}
    plugins_raw = raw.get("plugins", {})
    if not isinstance(plugins_raw, Mapping):
        problems.append(
            Problem(
                f"{path}.plugins", "expected a table of plugin tables ([resilience.plugins.NAME])"
            )
        )
        plugins_raw = {}
    for name, table in plugins_raw.items():
        where = f"{path}.plugins.{name}"
        if not isinstance(table, Mapping):
            problems.append(Problem(where, "expected a table of settings to override"))
            continue
        settings, more = structure({**base_raw, **table}, ResilienceSettings, where)
        problems += more
        if settings is not None:
            plugins[str(name)] = settings

    if problems:
        raise ConfigError(problems)
    assert default is not None
    return ResilienceSection(default=default, plugins=plugins)
