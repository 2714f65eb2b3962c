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
import tomllib
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

if typing.TYPE_CHECKING:
    from engine.plugins import PluginManager

__all__ = [
    "COMPONENT_SECTIONS",
    "ComponentSpec",
    "EngineConfig",
    "EngineSection",
    "InstrumentConfig",
    "RawConfig",
    "Secret",
    "between",
    "converter",
    "load_raw",
    "non_negative",
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
            problems.append(Problem(sub, str(exc)))
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


@frozen
class PaperSection:
    """``[paper]``: paper-trading pace."""

    speed: float = field(default=1.0, validator=positive)


@frozen
class _CoreConfig:
    engine: EngineSection = EngineSection()
    instruments: tuple[InstrumentConfig, ...] = ()
    paper: PaperSection = PaperSection()


@frozen
class ComponentSpec:
    """A resolved component: which record, its structured options, where it came from."""

    kind: str
    type: str
    record: Any
    options: Any
    path: str
    id: str = ""
    instrument: str | None = None


@frozen
class ComponentKind:
    """How one component section of the config maps to a record hook."""

    section: str
    hook: str
    label: str
    many: bool
    default: str | None = None
    required: bool = True


#: Component sections of the config, in resolution order.
COMPONENT_SECTIONS: tuple[ComponentKind, ...] = (
    ComponentKind("feed", "engine_feeds", "feed", many=False),
    ComponentKind("broker", "engine_brokers", "broker", many=False, default="simulated"),
    ComponentKind("strategies", "engine_strategies", "strategy", many=True),
    ComponentKind("filters", "engine_filters", "filter", many=True, required=False),
    ComponentKind(
        "validation_rules", "engine_validation_rules", "validation rule", many=True, required=False
    ),
    ComponentKind("guards", "engine_guards", "guard", many=True, required=False),
)
_CORE_SECTIONS = {"engine", "instruments", "paper"} | {k.section for k in COMPONENT_SECTIONS}

#: Sections whose hooks exist but that this version does not run yet. Configuring
#: one is an error: a kill switch that silently does nothing must never happen.
NOT_RUN_YET = {
    "runtime_guards": "runtime guards",
    "metrics_stores": "metrics stores",
    "exporters": "metrics exporters",
}

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
    components: Mapping[str, tuple[ComponentSpec, ...]]
    sections: Mapping[str, Any]
    raw: Mapping[str, Any]
    base_dir: Path
    source: str = "<dict>"

    def component(self, section: str) -> ComponentSpec:
        """The single component of a one-of section (``feed``, ``broker``)."""
        return self.components[section][0]

    def dump(self) -> dict[str, Any]:
        """The effective configuration as plain data, secrets redacted."""
        out: dict[str, Any] = {
            "engine": converter.unstructure(self.engine),
            "instruments": converter.unstructure(self.instruments),
            "paper": converter.unstructure(self.paper),
        }
        for kind in COMPONENT_SECTIONS:
            specs = self.components.get(kind.section, ())
            dumped = [
                {"type": s.type}
                | ({"id": s.id} if s.id else {})
                | ({"instrument": s.instrument} if s.instrument else {})
                | (converter.unstructure(s.options) if s.options else {})
                for s in specs
            ]
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
    record = records.get(type_name)
    if record is None:
        msg = f"unknown {kind.label} type {type_name!r}"
        hint = difflib.get_close_matches(type_name, list(records), n=1)
        msg += f" (did you mean {hint[0]!r}?)" if hint else ""
        msg += f"; available: {', '.join(records) or 'none'}"
        if failed:
            msg += "; plugins that failed to load: " + ", ".join(
                f"{n} ({e})" for n, e in failed.items()
            )
        return None, [Problem(f"{path}.type", msg)]
    core: dict[str, Any] = {}
    problems: list[Problem] = []
    if kind.section == "strategies":
        for key in ("id", "instrument"):
            if key in options:
                value = options.pop(key)
                if type(value) is not str:
                    problems.append(Problem(f"{path}.{key}", f"expected a string, got {value!r}"))
                core[key] = value
    if record.config_type is None:
        structured = None
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
        id=core.get("id", ""),
        instrument=core.get("instrument"),
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

    core_raw = {k: data[k] for k in ("engine", "instruments", "paper") if k in data}
    core, more = structure(core_raw, _CoreConfig, "config")
    problems += more

    components: dict[str, tuple[ComponentSpec, ...]] = {}
    for kind in COMPONENT_SECTIONS:
        path = f"config.{kind.section}"
        value = data.get(kind.section)
        if value is None:
            if kind.default is not None:
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
        if section is None and name in NOT_RUN_YET:
            problems.append(
                Problem(
                    f"config.{name}",
                    f"{NOT_RUN_YET[name]} are not run by this version yet; remove the section",
                )
            )
            continue
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
        for k, inst in enumerate(core.instruments):
            if inst.kind is InstrumentKind.PERPETUAL:
                problems.append(
                    Problem(
                        f"config.instruments[{k}].kind",
                        "perpetual futures are not supported by this version yet (spot only)",
                    )
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
        components=components,
        sections=plugin_sections,
        raw=raw.data,
        base_dir=raw.base_dir,
        source=raw.source,
    )
