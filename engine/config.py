"""Configuration: one TOML file into frozen attrs classes through one cattrs Converter.

* Unknown keys are errors (``forbid_extra_keys``); ints, floats, bools, strings
  and Decimals are strict (no ``"30" -> 30``, no ``"false" -> True``).
* Every problem is collected and reported together as ``path: problem`` lines
  (``config.strategies[0].fast: must be > 0, got -1``), raised as one
  :class:`~engine.errors.ConfigError`.
* Components (feed, broker, strategies, filters, validation rules, guards...)
  are tables with a ``type`` naming a record from a plugin; the rest of the table
  is structured into that record's ``config_type``.
* Top-level sections owned by plugins come from ``engine_config_sections``.
* Secrets are ``{ env = "NAME" }`` and never printed (:class:`Secret`).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import Any

import attrs
import cattrs
from attrs import field, frozen
from cattrs.errors import ForbiddenExtraKeysError

from engine.errors import ConfigError, Problem
from engine.model import InstrumentKind
from engine.records import Record
from engine.resilience.settings import ResilienceSection, parse_resilience

if typing.TYPE_CHECKING:
    from engine.plugins import PluginManager

__all__ = [
    "COMPONENT_SECTIONS",
    "BacktestSection",
    "ComponentSpec",
    "EngineConfig",
    "EngineSection",
    "InstrumentConfig",
    "RawConfig",
    "Secret",
    "between",
    "converter",
    "interval",
    "load_raw",
    "non_negative",
    "parse_interval",
    "positive",
    "resolve",
    "structure",
]


# -- validators with messages a user can act on --------------------------------------


def positive(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """attrs validator: ``value > 0``."""
    if not value > 0:
        raise ValueError(f"must be > 0, got {value}")


def non_negative(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """attrs validator: ``value >= 0``."""
    if not value >= 0:
        raise ValueError(f"must be >= 0, got {value}")


def between(low: Any, high: Any) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    """attrs validator factory: ``low <= value <= high``."""

    def check(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")

    return check


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


def interval(_inst: object, _attr: object, value: str) -> None:
    """attrs validator: an interval string such as ``250ms``, ``1s``, ``1m``, ``8h``, ``1d``."""
    parse_interval(value)


# -- secrets -----------------------------------------------------------------------------


class Secret:
    """A secret value read from the environment; its repr and dumps show ``***``."""

    __slots__ = ("_value", "env")

    def __init__(self, value: str, env: str | None = None) -> None:
        self._value = value
        self.env = env

    def reveal(self) -> str:
        """The secret itself; call only where it is sent to its destination."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


# -- the converter ---------------------------------------------------------------------


class _StrictTypeError(TypeError):
    """Raised by the strict hooks; its message is shown as is."""


def _type_name(value: Any) -> str:
    return {bool: "a boolean", str: "a string", int: "an integer", float: "a float"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _strict_int(value: Any, _: type) -> int:
    if type(value) is not int:
        raise _StrictTypeError(f"expected an integer, got {_type_name(value)} ({value!r})")
    return value


def _strict_float(value: Any, _: type) -> float:
    if type(value) not in (int, float):
        raise _StrictTypeError(f"expected a number, got {_type_name(value)} ({value!r})")
    return float(value)


def _strict_bool(value: Any, _: type) -> bool:
    if type(value) is not bool:
        raise _StrictTypeError(f"expected true or false, got {_type_name(value)} ({value!r})")
    return bool(value)


def _strict_str(value: Any, _: type) -> str:
    if type(value) is not str:
        raise _StrictTypeError(f"expected a string, got {_type_name(value)} ({value!r})")
    return str(value)


def _strict_decimal(value: Any, _: type) -> Decimal:
    if type(value) is int:
        return Decimal(value)
    if type(value) is float:
        if not math.isfinite(value):
            raise _StrictTypeError(f"expected a finite number, got {value!r}")
        return Decimal(repr(value))
    if type(value) is str:
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise _StrictTypeError(f"expected a decimal number, got {value!r}") from None
        if not result.is_finite():
            raise _StrictTypeError(f"expected a finite number, got {value!r}")
        return result
    raise _StrictTypeError(f"expected a decimal number, got {_type_name(value)} ({value!r})")


def _secret(value: Any, _: type) -> Secret:
    if type(value) is str:
        return Secret(value)
    if isinstance(value, Mapping) and set(value) == {"env"} and type(value["env"]) is str:
        name = value["env"]
        if name not in os.environ:
            raise _StrictTypeError(f"environment variable {name} is not set")
        return Secret(os.environ[name], env=name)
    raise _StrictTypeError('expected a string or { env = "NAME" }')


def _enum_hook(value: Any, cls: type[Enum]) -> Enum:
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in cls)
        raise _StrictTypeError(f"expected one of {choices}, got {value!r}") from None


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(Decimal, _strict_decimal)
    conv.register_structure_hook(Secret, _secret)
    conv.register_structure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, Enum), _enum_hook
    )
    conv.register_unstructure_hook(Decimal, str)
    conv.register_unstructure_hook(Secret, lambda s: "***")
    conv.register_unstructure_hook(Path, str)
    return conv


#: The one Converter every config section (core and plugins) goes through.
converter = _make_converter()


def _format_exception(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        return "\x00" + ",".join(sorted(exc.extra_fields))
    if isinstance(exc, KeyError):
        return "required key is missing"
    if isinstance(exc, _StrictTypeError | ValueError):
        return str(exc)
    if isinstance(exc, TypeError):
        return f"invalid value ({exc})"
    return f"{type(exc).__name__}: {exc}"


def _field_names(cls: type) -> list[str]:
    return [a.alias or a.name for a in attrs.fields(cls)] if attrs.has(cls) else []


def _lookup_type(cls: type, dotted: list[str]) -> type | None:
    """The attrs class found at a path of field names under ``cls`` (for key hints)."""
    for part in dotted:
        if not attrs.has(cls):
            return None
        hints = typing.get_type_hints(cls)
        name = part.split("[")[0]
        if name not in hints:
            return None
        tp = hints[name]
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        cls = args[0] if "[" in part and args else tp
    return cls if isinstance(cls, type) else None


def _problems_from(exc: Exception, path: str, cls: type) -> list[Problem]:
    problems = []
    for line in cattrs.transform_error(exc, path=path, format_exception=_format_exception):
        msg, _, where = line.rpartition(" @ ")
        if msg.startswith("\x00"):
            sub = where[len(path) :].lstrip(".").split(".") if where != path else []
            owner = _lookup_type(cls, [p for p in sub if p])
            known = _field_names(owner) if owner is not None else []
            for key in msg[1:].split(","):
                hint = difflib.get_close_matches(key, known, n=1)
                text = f"unknown key (did you mean {hint[0]!r}?)" if hint else "unknown key"
                if known and not hint:
                    text += f"; known keys: {', '.join(known)}"
                problems.append(Problem(f"{where}.{key}", text))
        else:
            problems.append(Problem(where, msg))
    return problems


_ARRAYS = (tuple, list, set, frozenset)


def _is_array_type(tp: Any) -> bool:
    """True for tuple/list/set types, also inside ``X | None``."""
    if typing.get_origin(tp) in _ARRAYS or tp in _ARRAYS:
        return True
    args = typing.get_args(tp)
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and any(
        _is_array_type(a) for a in args if a is not type(None)
    )


def _validator_problems(raw: Any, cls: Any, path: str) -> list[Problem]:
    """Run each field's validator on the values that structure, so a negative
    window is reported even when a sibling key is misspelt."""
    problems: list[Problem] = []
    if not (attrs.has(cls) and isinstance(raw, Mapping)):
        return problems
    hints = typing.get_type_hints(cls)
    for a in attrs.fields(cls):
        key = a.alias or a.name
        if key not in raw:
            continue
        tp = hints.get(a.name, a.type)
        value = raw[key]
        sub = f"{path}.{key}"
        if isinstance(value, str) and _is_array_type(tp):
            # cattrs would split the string into characters
            problems.append(Problem(sub, f"expected an array, got a string ({value!r})"))
            continue
        if attrs.has(tp):
            problems += _validator_problems(value, tp, sub)
            continue
        args = [t for t in typing.get_args(tp) if t is not Ellipsis]
        if args and attrs.has(args[0]) and isinstance(value, list):
            for i, item in enumerate(value):
                problems += _validator_problems(item, args[0], f"{sub}[{i}]")
            continue
        if a.validator is None:
            continue
        try:
            structured = converter.structure(value, tp)
        except Exception:
            continue  # reported by the structuring pass
        try:
            a.validator(None, a, structured)
        except (ValueError, TypeError) as exc:
            # attrs' own validators carry (message, attribute, ...) in their args
            text = exc.args[0] if len(exc.args) > 1 and isinstance(exc.args[0], str) else str(exc)
            problems.append(Problem(sub, text))
    return problems


def structure(raw: Any, cls: type[Any], path: str) -> tuple[Any, list[Problem]]:
    """Structure ``raw`` into ``cls``; returns ``(instance or None, problems)``."""
    problems = _validator_problems(raw, cls, path)
    instance = None
    with attrs.validators.disabled():
        try:
            instance = converter.structure(raw, cls)
        except Exception as exc:
            problems += _problems_from(exc, path, cls)
    seen: set[Problem] = set()
    unique = [p for p in problems if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]
    return (None if unique else instance), unique


# -- the core's own sections ------------------------------------------------------


@frozen
class EngineSection:
    """``[engine]``: account and run settings."""

    name: str = "engine"
    initial_cash: Decimal = field(default=Decimal(100_000), validator=positive)
    currency: str = "USD"
    seed: int = 0


@frozen
class InstrumentConfig:
    """``[[instruments]]``: one tradable instrument and its price/size grid."""

    symbol: str
    tick_size: Decimal = field(validator=positive)
    lot_size: Decimal = field(default=Decimal(1), validator=positive)
    kind: InstrumentKind = InstrumentKind.SPOT
    multiplier: Decimal = field(default=Decimal(1), validator=positive)
    #: perpetuals: initial margin rate (0.2 allows 5x leverage) and maintenance rate
    initial_margin: Decimal = field(default=Decimal(1), validator=between(Decimal(0), Decimal(1)))
    maintenance_margin: Decimal = field(
        default=Decimal("0.5"), validator=between(Decimal(0), Decimal(1))
    )
    #: perpetuals: funding period and the rate used when the feed has no funding_rate column
    funding_interval: str = field(default="8h", validator=interval)
    funding_rate: Decimal = Decimal(0)

    def __attrs_post_init__(self) -> None:
        margins_ok = 0 < self.maintenance_margin < self.initial_margin
        if self.kind is InstrumentKind.PERPETUAL and not margins_ok:
            raise ValueError(
                f"a perpetual needs 0 < maintenance_margin ({self.maintenance_margin})"
                f" < initial_margin ({self.initial_margin})"
            )


@frozen
class TradingSection:
    """``[trading]``: how the trading state behaves."""

    #: a less severe state (REDUCING -> ACTIVE...) is taken only after runtime guards
    #: have asked for it without interruption for this long (engine time)
    resume_after: str = field(default="15m", validator=interval)
    #: the state a restarted run trades in until reconciliation with the venue passes
    until_reconciled: str = field(
        default="halted", validator=attrs.validators.in_(("halted", "reducing"))
    )


_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


@frozen
class LoggingSection:
    """``[logging]``: applied by the ``engine`` command (its flags override it)."""

    level: str = field(default="WARNING", validator=attrs.validators.in_(_LEVELS))
    json: bool = False
    #: also write to this file (relative to the working directory), rotated by size
    file: str | None = None
    rotation: str = "100 MB"
    #: log every order's path (bar, intent, decision, submit, fill) with a correlation id
    trace_orders: bool = False


@frozen
class MetricsSection:
    """``[metrics]``: how often metrics are collected for stores and exporters."""

    #: engine time between two collections (a backtest collects on its bars' clock)
    interval: str = field(default="1m", validator=interval)


@frozen
class PaperSection:
    """``[paper]``: paper-trading pace."""

    speed: float = field(default=1.0, validator=positive)


def _interval_or_bar(_inst: object, _attr: object, value: str) -> None:
    if value == "bar":
        return
    try:
        parse_interval(value)
    except ValueError:
        message = f'expected "bar" or an interval like 1m, 1h or 1d, got {value!r}'
        raise ValueError(message) from None


@frozen
class BacktestSection:
    """``[backtest]``: how backtests run."""

    #: visit only the bars where something can happen: bars a strategy's ``prepare``
    #: marks as active, bars with orders resting at the simulated venue, and bars where
    #: timed work is due (metrics, runtime guards, funding). Trades, fills, denials and
    #: the report are exactly those of the bar-by-bar run. Runs over several
    #: instruments, and instruments with a strategy that does not mark its active
    #: bars, are run bar by bar.
    vectorised: bool = False
    #: read the feed in chunks and keep only a bounded window of bars, so a history of
    #: any length runs in bounded memory (the feed must offer ``chunks()``, as
    #: ``parquet`` does). Trades, fills, denials and final figures are exactly those of
    #: the in-memory run; the equity curve keeps one point per ``equity_interval``.
    #: Streamed runs visit every bar (``vectorised`` does not apply).
    stream: bool = False
    #: streamed runs: bars read from the feed at a time, per instrument
    chunk_bars: int = field(default=262_144, validator=positive)
    #: streamed runs: bars kept before each chunk for checks that look back
    #: (``ctx.history``, ``ctx.window_sum``); asking for more is an error
    history_bars: int = field(default=10_000, validator=positive)
    #: streamed runs: the equity curve keeps the last bar of each interval of engine
    #: time (``"bar"``: every bar, whose memory grows with the run)
    equity_interval: str = field(default="1h", validator=_interval_or_bar)


@frozen
class _CoreConfig:
    engine: EngineSection = EngineSection()
    backtest: BacktestSection = BacktestSection()
    instruments: tuple[InstrumentConfig, ...] = ()
    paper: PaperSection = PaperSection()
    trading: TradingSection = TradingSection()
    metrics: MetricsSection = MetricsSection()
    logging: LoggingSection = LoggingSection()


@frozen
class StrategyKeys:
    """Keys the core reads from a ``[[strategies]]`` table (the rest is the plugin's)."""

    id: str = ""
    instrument: str | None = None


@frozen
class CheckKeys:
    """Keys the core reads from a filter, validation rule or guard table."""

    #: apply only to intents of these strategy ids (empty: every strategy)
    strategies: tuple[str, ...] = ()


@frozen
class RuntimeGuardKeys:
    """Keys the core reads from a ``[[runtime_guards]]`` table."""

    cadence: str | None = field(default=None, validator=attrs.validators.optional(interval))
    #: close every position when this guard moves trading to a more severe state
    flatten: bool = False


@frozen
class NoKeys:
    """Components whose tables hold only the plugin's options."""


#: Composition of pipeline checks in config, without code: type -> key of the children.
COMBINATORS = {"all_of": "checks", "any_of": "checks", "not": "check"}


@frozen
class ComponentSpec:
    """A resolved component: which record, its structured options, where it came from.

    ``core`` holds the keys the core itself reads (:class:`StrategyKeys`,
    :class:`CheckKeys`, :class:`RuntimeGuardKeys`); ``children`` the nested checks
    of an ``all_of``/``any_of``/``not`` combinator.
    """

    kind: str
    type: str
    record: Any
    options: Any
    path: str
    core: Any = NoKeys()
    children: tuple[ComponentSpec, ...] = ()

    @property
    def id(self) -> str:
        """A strategy's configured id ('' when not set)."""
        return str(getattr(self.core, "id", ""))

    @property
    def instrument(self) -> str | None:
        """A strategy's configured instrument (``None``: the first instrument)."""
        value = getattr(self.core, "instrument", None)
        return None if value is None else str(value)

    def dump(self) -> dict[str, Any]:
        """This component as plain data (as it would be written in TOML)."""
        out: dict[str, Any] = {"type": self.type}
        if not isinstance(self.core, NoKeys):
            defaults = type(self.core)()
            out |= {
                k: v
                for k, v in converter.unstructure(self.core).items()
                if getattr(self.core, k) != getattr(defaults, k)
            }
        if self.children:
            key = COMBINATORS[self.type]
            dumped = [c.dump() for c in self.children]
            out[key] = dumped if key == "checks" else dumped[0]
        if self.options is not None:
            out |= converter.unstructure(self.options)
        return out


@frozen
class ComponentKind:
    """How one component section of the config maps to a record hook."""

    section: str
    hook: str
    label: str
    many: bool
    default: str | None = None
    required: bool = True
    core_keys: type = NoKeys
    #: for array sections: the tables used when the section is absent
    default_items: tuple[Mapping[str, Any], ...] = ()

    @property
    def is_check(self) -> bool:
        """True for the order pipeline's stages."""
        return self.core_keys is CheckKeys


#: Component sections of the config, in resolution order.
COMPONENT_SECTIONS: tuple[ComponentKind, ...] = (
    ComponentKind("feed", "engine_feeds", "feed", many=False),
    ComponentKind("broker", "engine_brokers", "broker", many=False, default="simulated"),
    ComponentKind("strategies", "engine_strategies", "strategy", many=True, core_keys=StrategyKeys),
    ComponentKind(
        "filters", "engine_filters", "filter", many=True, required=False, core_keys=CheckKeys
    ),
    ComponentKind(
        "validation_rules",
        "engine_validation_rules",
        "validation rule",
        many=True,
        required=False,
        core_keys=CheckKeys,
    ),
    ComponentKind(
        "guards", "engine_guards", "guard", many=True, required=False, core_keys=CheckKeys
    ),
    ComponentKind(
        "runtime_guards",
        "engine_runtime_guards",
        "runtime guard",
        many=True,
        required=False,
        core_keys=RuntimeGuardKeys,
    ),
    ComponentKind(
        "metrics_stores", "engine_metrics_stores", "metrics store", many=True, required=False
    ),
    ComponentKind("exporters", "engine_exporters", "exporter", many=True, required=False),
    ComponentKind("journal", "engine_journals", "journal", many=False, required=False),
    ComponentKind(
        "alert_sinks",
        "engine_alert_sinks",
        "alert sink",
        many=True,
        required=False,
        default_items=({"type": "log"},),
    ),
)
_CORE_SECTIONS = {
    "engine",
    "instruments",
    "paper",
    "backtest",
    "trading",
    "metrics",
    "logging",
    "resilience",
    "sweep",
} | {k.section for k in COMPONENT_SECTIONS}


#: Sections of first-party plugins that are not installed: section -> package to install.
KNOWN_PLUGIN_SECTIONS = {
    "prometheus": "engine-plugin-prometheus",
    "redis": "engine-plugin-redis",
    "dask": "engine-plugin-dask",
}


@frozen
class EngineConfig:
    """The whole resolved configuration of one engine."""

    engine: EngineSection
    instruments: tuple[InstrumentConfig, ...]
    paper: PaperSection
    trading: TradingSection
    metrics: MetricsSection
    logging: LoggingSection
    components: Mapping[str, tuple[ComponentSpec, ...]]
    sections: Mapping[str, Any]
    raw: Mapping[str, Any]
    base_dir: Path
    source: str = "<dict>"
    #: ``[resilience]``: the policy for calls to venues and services, per plugin
    resilience: ResilienceSection = field(factory=lambda: ResilienceSection())
    #: ``[backtest]``: how backtests run
    backtest: BacktestSection = field(factory=lambda: BacktestSection())

    def component(self, section: str) -> ComponentSpec:
        """The single component of a one-of section (``feed``, ``broker``)."""
        return self.components[section][0]

    def dump(self) -> dict[str, Any]:
        """The effective configuration as plain data, secrets redacted."""
        out: dict[str, Any] = {
            "engine": converter.unstructure(self.engine),
            "instruments": converter.unstructure(self.instruments),
            "paper": converter.unstructure(self.paper),
            "backtest": converter.unstructure(self.backtest),
            "trading": converter.unstructure(self.trading),
            "metrics": converter.unstructure(self.metrics),
            "logging": converter.unstructure(self.logging),
            "resilience": {
                "default": converter.unstructure(self.resilience.default),
                "plugins": {
                    k: converter.unstructure(v) for k, v in self.resilience.plugins.items()
                },
            },
        }
        for kind in COMPONENT_SECTIONS:
            dumped = [s.dump() for s in self.components.get(kind.section, ())]
            if dumped:
                out[kind.section] = dumped if kind.many else dumped[0]
        for name, value in self.sections.items():
            out[name] = converter.unstructure(value)
        return out


@frozen
class RawConfig:
    """Parsed but unresolved configuration (resolution needs the plugins)."""

    data: Mapping[str, Any]
    base_dir: Path
    source: str


def load_raw(source: str | os.PathLike[str] | Mapping[str, Any]) -> RawConfig:
    """Read a TOML file (or take a dict); TOML syntax errors name file, line and column."""
    if isinstance(source, Mapping):
        return RawConfig(dict(source), Path.cwd(), "<dict>")
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(str(path), f"cannot read config: {exc.strerror}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem(str(path), f"invalid TOML: {exc}")]) from None
    return RawConfig(data, path.resolve().parent, str(path))


def _unknown_type(
    kind: ComponentKind, type_name: str, records: Mapping[str, Any], failed: Mapping[str, str]
) -> str:
    names = [*records, *(COMBINATORS if kind.is_check else ())]
    msg = f"unknown {kind.label} type {type_name!r}"
    hint = difflib.get_close_matches(type_name, names, n=1)
    msg += f" (did you mean {hint[0]!r}?)" if hint else ""
    msg += f"; available: {', '.join(names) or 'none'}"
    if failed:
        msg += "; plugins that failed to load: " + ", ".join(
            f"{n} ({e})" for n, e in failed.items()
        )
    return msg


def _resolve_component(
    kind: ComponentKind, raw: Any, path: str, records: Mapping[str, Any], failed: Mapping[str, str]
) -> tuple[ComponentSpec | None, list[Problem]]:
    if not isinstance(raw, Mapping):
        return None, [Problem(path, f"expected a table describing a {kind.label}")]
    options = dict(raw)
    type_name = options.pop("type", kind.default)
    if type_name is None:
        avail = ", ".join(records) or "none installed"
        return None, [Problem(f"{path}.type", f"required key is missing (available: {avail})")]
    if type(type_name) is not str:
        return None, [Problem(f"{path}.type", f"expected a string, got {type_name!r}")]
    combinator = kind.is_check and type_name in COMBINATORS
    record: Any = Record(name=type_name, plugin="engine") if combinator else records.get(type_name)
    if record is None:
        return None, [Problem(f"{path}.type", _unknown_type(kind, type_name, records, failed))]
    problems: list[Problem] = []
    own = {a.name for a in attrs.fields(kind.core_keys)}
    core, more = structure(
        {k: options.pop(k) for k in list(options) if k in own}, kind.core_keys, path
    )
    problems += more
    children: list[ComponentSpec] = []
    structured = None
    if combinator:
        key = COMBINATORS[type_name]
        raw_children = options.pop(key, None)
        items = raw_children if key == "checks" else [raw_children]
        if (
            raw_children is None
            or (key == "checks" and not isinstance(raw_children, list))
            or not items
        ):
            form = "a non-empty array of tables" if key == "checks" else "a table"
            problems.append(Problem(f"{path}.{key}", f"expected {form} of {kind.label}s"))
            items = []
        for k, item in enumerate(items):
            child_path = f"{path}.{key}[{k}]" if key == "checks" else f"{path}.{key}"
            child, more = _resolve_component(kind, item, child_path, records, failed)
            problems += more
            if child is not None:
                children.append(child)
        if options:
            problems.append(
                Problem(
                    path,
                    f"{type_name!r} takes only {key!r} and 'strategies',"
                    f" got {', '.join(sorted(options))}",
                )
            )
    elif record.config_type is None:
        if options:
            keys = ", ".join(sorted(options))
            problems.append(
                Problem(path, f"{kind.label} {type_name!r} takes no options, got {keys}")
            )
    else:
        structured, more = structure(options, record.config_type, path)
        problems += more
    spec = ComponentSpec(
        kind=kind.section,
        type=type_name,
        record=record,
        options=structured,
        path=path,
        core=core if core is not None else kind.core_keys(),
        children=tuple(children),
    )
    return spec, problems


def resolve(raw: RawConfig, plugins: PluginManager) -> EngineConfig:
    """Turn raw config into an :class:`EngineConfig`, collecting every problem.

    Raises :class:`ConfigError` listing all of them.
    """
    data = dict(raw.data)
    problems: list[Problem] = []
    failed = plugins.failed()
    sections = plugins.records("engine_config_sections")

    core_raw = {
        k: data[k]
        for k in ("engine", "instruments", "paper", "backtest", "trading", "metrics", "logging")
        if k in data
    }
    core, more = structure(core_raw, _CoreConfig, "config")
    problems += more
    resilience = ResilienceSection()
    if "resilience" in data:
        try:
            resilience = parse_resilience(data["resilience"])
        except ConfigError as exc:
            problems += exc.problems

    if "sweep" in data:  # [sweep] and its executors' tables (engine.research.settings)
        from engine.research.settings import parse_sweep

        problems += parse_sweep(data["sweep"], plugins)[1]

    components: dict[str, tuple[ComponentSpec, ...]] = {}
    for kind in COMPONENT_SECTIONS:
        path = f"config.{kind.section}"
        value = data.get(kind.section)
        if value is None:
            if kind.default_items:
                value = [dict(item) for item in kind.default_items]
            elif kind.default is not None:
                value = {}
            elif kind.required:
                problems.append(Problem(path, f"required section is missing ({kind.label})"))
                continue
            else:
                continue
        items: list[tuple[Any, str]]
        if kind.many:
            if not isinstance(value, list):
                problems.append(Problem(path, f"expected an array of tables ([[{kind.section}]])"))
                continue
            items = [(v, f"{path}[{i}]") for i, v in enumerate(value)]
        else:
            items = [(value, path)]
        specs = []
        records = plugins.records(kind.hook)
        for item, item_path in items:
            spec, more = _resolve_component(kind, item, item_path, records, failed)
            problems += more
            if spec is not None:
                specs.append(spec)
        components[kind.section] = tuple(specs)
    if data.get("strategies") == []:
        problems.append(Problem("config.strategies", "at least one strategy is required"))

    plugin_sections: dict[str, Any] = {}
    for name, value in data.items():
        if name in _CORE_SECTIONS:
            continue
        section = sections.get(name)
        if section is None:
            msg = "unknown section"
            if name in KNOWN_PLUGIN_SECTIONS:
                msg += f"; it belongs to a plugin: pip install {KNOWN_PLUGIN_SECTIONS[name]}"
            else:
                hint = difflib.get_close_matches(name, sorted(_CORE_SECTIONS | set(sections)), n=1)
                msg += f" (did you mean [{hint[0]}]?)" if hint else ""
            problems.append(Problem(f"config.{name}", msg))
            continue
        structured, more = structure(value, section.config_type, f"config.{name}")
        problems += more
        plugin_sections[name] = structured
    for name, section in sections.items():
        if name not in plugin_sections and name not in data:
            structured, more = structure({}, section.config_type, f"config.{name}")
            problems += more
            plugin_sections[name] = structured

    if core is not None:
        symbols = [i.symbol for i in core.instruments]
        if not symbols:
            problems.append(Problem("config.instruments", "at least one instrument is required"))
        dupes = sorted({s for s in symbols if symbols.count(s) > 1})
        if dupes:
            problems.append(
                Problem("config.instruments", f"duplicate symbol(s): {', '.join(dupes)}")
            )
        for spec in components.get("strategies", ()):
            if spec.instrument is not None and spec.instrument not in symbols:
                problems.append(
                    Problem(
                        f"{spec.path}.instrument",
                        f"unknown instrument {spec.instrument!r}; configured: {', '.join(symbols)}",
                    )
                )
    if problems:
        raise ConfigError(problems, source=raw.source)
    assert core is not None
    return EngineConfig(
        engine=core.engine,
        instruments=core.instruments,
        paper=core.paper,
        trading=core.trading,
        metrics=core.metrics,
        logging=core.logging,
        components=components,
        sections=plugin_sections,
        raw=raw.data,
        base_dir=raw.base_dir,
        source=raw.source,
        resilience=resilience,
        backtest=core.backtest,
    )
