"""``[sweep]``: how sweeps run, and the executors that run them.

.. code-block:: toml

    [sweep]
    executor = "local"        # default: local with more than one core, else sequential
    workers = 2               # default: the executor's (local: one per core)
    metric = "sharpe"         # what best-N, heatmaps and walk-forward optimise
    minimize = false          # true when lower is better (e.g. a cost)
    top = 10                  # rows of the best-N summary
    data = "ship"             # ship: load the bars once, send one copy per worker;
                              # load: each worker loads them itself, once (shared path)

    [sweep.dask]              # options of one executor, by its name
    address = "tcp://10.0.0.5:8786"

Executors are records of the ``engine_executors`` hook; ``factory(options)`` gets
the structured ``[sweep.NAME]`` table (or ``None`` when the executor has no
options) and returns an object with ``run(job) -> Iterator[RunOutcome]`` and,
optionally, ``close()``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from attrs import field, frozen

from engine.config import KNOWN_PLUGIN_SECTIONS, positive, structure
from engine.errors import ConfigError, Problem

if TYPE_CHECKING:
    from engine.engine import Engine
    from engine.plugins import PluginManager

__all__ = ["SweepSection", "default_executor", "make_executor", "parse_sweep", "sweep_settings"]

#: executors of first-party plugins: name -> package to install
KNOWN_EXECUTORS = {"dask": KNOWN_PLUGIN_SECTIONS.get("dask", "engine-plugin-dask")}


def default_executor() -> str:
    """``local`` on a machine with more than one core, else ``sequential``."""
    return "local" if (os.cpu_count() or 1) > 1 else "sequential"


@frozen
class SweepSection:
    """``[sweep]`` settings (the executors' own tables are in ``options``)."""

    executor: str | None = None
    workers: int | None = field(default=None, validator=attrs.validators.optional(positive))
    metric: str = "sharpe"
    minimize: bool = False
    top: int = field(default=10, validator=positive)
    data: str = field(default="ship", validator=attrs.validators.in_(("ship", "load")))
    #: executor name -> its structured options
    options: Mapping[str, Any] = field(factory=dict)

    @property
    def executor_name(self) -> str:
        """The executor to use: the configured one, else :func:`default_executor`."""
        return self.executor or default_executor()


def _unknown_executor(name: str, records: Mapping[str, Any]) -> str:
    msg = f"unknown executor {name!r}"
    hint = difflib.get_close_matches(name, list(records), n=1)
    msg += f" (did you mean {hint[0]!r}?)" if hint else ""
    msg += f"; available: {', '.join(records) or 'none'}"
    if name in KNOWN_EXECUTORS:
        msg += f"; it belongs to a plugin: pip install {KNOWN_EXECUTORS[name]}"
    return msg


def parse_sweep(
    raw: Any, plugins: PluginManager, path: str = "config.sweep"
) -> tuple[SweepSection | None, list[Problem]]:
    """Structure a raw ``[sweep]`` table; returns ``(section or None, problems)``."""
    if not isinstance(raw, Mapping):
        return None, [Problem(path, "expected a table")]
    own = {a.name for a in attrs.fields(SweepSection)} - {"options"}
    records = plugins.records("engine_executors")
    problems: list[Problem] = []
    options: dict[str, Any] = {}
    plain: dict[str, Any] = {}
    for key, value in raw.items():
        if key in own:
            plain[key] = value
        elif isinstance(value, Mapping):
            record = records.get(key)
            if record is None:
                problems.append(Problem(f"{path}.{key}", _unknown_executor(key, records)))
            elif record.config_type is None:
                if value:
                    problems.append(Problem(f"{path}.{key}", f"executor {key!r} takes no options"))
            else:
                structured, more = structure(dict(value), record.config_type, f"{path}.{key}")
                problems += more
                options[key] = structured
        else:
            hint = difflib.get_close_matches(key, sorted(own), n=1)
            text = f"unknown key (did you mean {hint[0]!r}?)" if hint else "unknown key"
            problems.append(
                Problem(f"{path}.{key}", f"{text}; known keys: {', '.join(sorted(own))}")
            )
    section, more = structure(plain, SweepSection, path)
    problems += more
    if section is not None and section.executor is not None and section.executor not in records:
        problems.append(Problem(f"{path}.executor", _unknown_executor(section.executor, records)))
    if problems or section is None:
        return None, problems
    return attrs.evolve(section, options=options), []


def sweep_settings(engine: Engine, **overrides: Any) -> SweepSection:
    """The engine's ``[sweep]`` section with ``overrides`` (``None`` values ignored)
    applied; a :class:`ConfigError` naming the problem otherwise."""
    raw = dict(engine.config.raw.get("sweep", {}))
    section, problems = parse_sweep(raw, engine.plugins)
    if problems or section is None:
        raise ConfigError(problems)
    values = {k: v for k, v in overrides.items() if v is not None}
    if "executor" in values:
        records = engine.plugins.records("engine_executors")
        if values["executor"] not in records:
            raise ConfigError(
                [Problem("--executor", _unknown_executor(values["executor"], records))]
            )
    for key in ("workers", "top"):
        if key in values and values[key] <= 0:
            raise ConfigError([Problem(f"--{key}", f"must be > 0, got {values[key]}")])
    return attrs.evolve(section, **values)


def make_executor(engine: Engine, settings: SweepSection) -> Any:
    """Build the executor ``settings`` names, with its ``[sweep.NAME]`` options."""
    name = settings.executor_name
    records = engine.plugins.records("engine_executors")
    record = records.get(name)
    if record is None:
        raise ConfigError([Problem("config.sweep.executor", _unknown_executor(name, records))])
    options = settings.options.get(name)
    if options is None and record.config_type is not None:
        options, problems = structure({}, record.config_type, f"config.sweep.{name}")
        if problems:
            raise ConfigError(problems)
    from engine.errors import PluginError

    try:
        return record.factory(options)
    except (ConfigError, PluginError):
        raise
    except Exception as exc:
        raise PluginError(
            f"config.sweep.{name}: building executor {name!r} failed: {type(exc).__name__}: {exc}",
            plugin=record.plugin,
        ) from exc
