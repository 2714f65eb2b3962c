"""Installed plugins: what each distribution provides, and pip in the engine's own
interpreter.

:func:`inventory` is what ``engine plugins --all`` shows: every distribution that
provides plugins (entry points of the group ``engine``), its version and where it
is installed, each plugin's module, status, hooks, the records it returns and its
errors (import, registration, and errors raised while returning records), plus
the distributions that look like engine plugins but declare no entry point in
that group (the usual packaging mistake: a misspelled group name).

:func:`pip` runs ``python -m pip`` of the interpreter that runs the engine
(``sys.executable``), so ``engine install NAME`` puts a plugin exactly where this
engine finds it, whatever ``pip`` is first on ``PATH``.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import Distribution, distributions, entry_points
from typing import Any

import attrs

from engine import hookspecs
from engine.errors import MissingDependency, PluginError
from engine.plugins import CORE_DISTRIBUTION, ENTRY_POINT_GROUP, PluginManager

__all__ = [
    "DistributionEntry",
    "PluginEntry",
    "canonical_name",
    "installed_plugins",
    "inventory",
    "pip",
    "plugin_changes",
    "require_pip",
]


def canonical_name(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503).

    >>> canonical_name("Engine_Plugin.Max-Loss")
    'engine-plugin-max-loss'
    """
    return re.sub(r"[-_.]+", "-", name).lower()


@attrs.frozen
class PluginEntry:
    """One plugin (entry point) of a distribution, as ``engine plugins --all`` shows it."""

    name: str
    #: loaded, failed, disabled or registered (see :class:`~engine.plugins.PluginInfo`)
    status: str
    #: the entry point's target (``engine_plugin_max_loss``)
    module: str | None
    hooks: tuple[str, ...] = ()
    #: record hook -> names of the records the plugin returned
    records: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    error: str | None = None


@attrs.frozen
class DistributionEntry:
    """An installed distribution that provides plugins (or looks as if it should)."""

    name: str
    version: str | None
    #: the folder it is installed in, or its source folder when installed editable
    location: str | None = None
    editable: bool = False
    builtin: bool = False
    plugins: tuple[PluginEntry, ...] = ()
    #: why it provides no plugin although it looks like a plugin package
    problem: str | None = None


def _location(dist: Distribution | None) -> tuple[str | None, bool]:
    if dist is None:
        return None, False
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        direct = {}
    url = str(direct.get("url", ""))
    if direct.get("dir_info", {}).get("editable") and url.startswith("file://"):
        return url.removeprefix("file://"), True
    try:
        return str(dist.locate_file("")), False
    except (NotImplementedError, OSError):  # a distribution without files on disk
        return None, False


def _records(manager: PluginManager) -> tuple[dict[str, dict[str, list[str]]], dict[str, str]]:
    """Record names by plugin and hook; errors that a record hook raised for all
    plugins at once (two plugins returning records of the same name)."""
    by_plugin: dict[str, dict[str, list[str]]] = {}
    errors: dict[str, str] = {}
    for hook in hookspecs.RECORD_HOOKS:
        try:
            records = manager.collect(hook)
        except PluginError as exc:
            plugin = str(exc.context.get("plugin", ""))
            errors[plugin] = f"{errors[plugin]}; {exc.message}" if plugin in errors else exc.message
            continue
        for record in records:
            by_plugin.setdefault(record.plugin, {}).setdefault(hook, []).append(record.name)
    return by_plugin, errors


def _requires_engine(dist: Distribution) -> bool:
    for requirement in dist.requires or ():
        name = re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0]
        if canonical_name(name) == CORE_DISTRIBUTION:
            return True
    return False


def _suspects(seen: set[str]) -> list[DistributionEntry]:
    """Distributions named like plugins, or depending on the engine, or with an
    entry-point group close to ``engine``, that declare no ``engine`` entry point."""
    out: dict[str, DistributionEntry] = {}
    for dist in distributions():
        raw = dist.metadata["Name"] if dist.metadata else None
        if not raw:
            continue
        name = canonical_name(raw)
        if name in seen or name in out or name == CORE_DISTRIBUTION:
            continue
        groups = sorted({ep.group for ep in dist.entry_points})
        if ENTRY_POINT_GROUP in groups:
            continue
        near = [g for g in groups if "engine" in g.lower()] or difflib.get_close_matches(
            ENTRY_POINT_GROUP, groups, n=2, cutoff=0.75
        )
        if not (name.startswith("engine-plugin-") or near or _requires_engine(dist)):
            continue
        problem = f"declares no entry point in group {ENTRY_POINT_GROUP!r}, so it adds no plugin"
        if near:
            problem += (
                f" (it has {', '.join(map(repr, near))}: did you mean {ENTRY_POINT_GROUP!r}?)"
            )
        location, editable = _location(dist)
        out[name] = DistributionEntry(
            name=raw, version=dist.version, location=location, editable=editable, problem=problem
        )
    return [out[k] for k in sorted(out)]


def inventory(manager: PluginManager) -> list[DistributionEntry]:
    """Every distribution that provides plugins to ``manager`` (the core first), with
    its plugins, their hooks, records and errors; then the suspect distributions.

    Asking each plugin for its records calls its record hooks: an error raised
    there is reported as the plugin's error, like an import error."""
    manager.load()
    by_plugin, errors = _records(manager)
    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    groups: dict[str, list[PluginEntry]] = {}
    dists: dict[str, Distribution | None] = {}
    for info in manager.infos():
        ep = eps.get(info.name)
        error = "; ".join(e for e in (info.error, errors.get(info.name)) if e) or None
        entry = PluginEntry(
            name=info.name,
            status=info.status,
            module=ep.value if ep is not None else None,
            hooks=info.hooks,
            records={h: tuple(n) for h, n in by_plugin.get(info.name, {}).items()},
            error=error,
        )
        key = info.distribution or ""
        groups.setdefault(key, []).append(entry)
        if key not in dists:
            dists[key] = ep.dist if ep is not None else None
    out = []
    order = sorted(groups, key=lambda k: (k != CORE_DISTRIBUTION, k == "", canonical_name(k)))
    for key in order:
        dist = dists[key]
        location, editable = _location(dist)
        out.append(
            DistributionEntry(
                name=key or "(registered in this process)",
                version=dist.version if dist is not None else None,
                location=location,
                editable=editable,
                builtin=key == CORE_DISTRIBUTION,
                plugins=tuple(groups[key]),
            )
        )
    return out + _suspects({canonical_name(k) for k in groups if k})


# -- pip ----------------------------------------------------------------------------------


def require_pip() -> None:
    """Raise :class:`MissingDependency` when this interpreter has no pip."""
    if importlib.util.find_spec("pip") is None:
        raise MissingDependency(
            f"pip is not installed for {sys.executable}, the Python that runs the engine:"
            f" run `{sys.executable} -m ensurepip --upgrade` first, or install the plugin"
            " with the tool that manages this environment"
        )


def pip(args: Iterable[str]) -> int:
    """Run ``python -m pip ARGS`` in the engine's interpreter; its output goes to this
    process's terminal and its exit code is returned."""
    require_pip()
    return subprocess.call([sys.executable, "-m", "pip", *args])


def installed_plugins() -> dict[str, dict[str, Any]]:
    """The plugins a fresh engine process of this interpreter finds (name -> the
    ``engine plugins --json`` entry): a fresh process, because an install may add
    paths that this process never sees (editable installs)."""
    env = {k: v for k, v in os.environ.items() if k != "ENGINE_STRICT_PLUGINS"}
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise PluginError(f"could not list the plugins after pip: {proc.stderr.strip()}")
    return {p["name"]: p for p in json.loads(proc.stdout)}


def plugin_changes(
    before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Plugins added or changed (another distribution or version), and plugins removed.

    >>> a = {"x": {"name": "x", "distribution": "d", "version": "1"}}
    >>> b = {"x": {"name": "x", "distribution": "d", "version": "2"}}
    >>> [p["version"] for p in plugin_changes(a, b)[0]], plugin_changes(a, {})[1] == [a["x"]]
    (['2'], True)
    """

    def key(p: Mapping[str, Any]) -> tuple[Any, Any]:
        return p.get("distribution"), p.get("version")

    changed = [p for n, p in after.items() if n not in before or key(before[n]) != key(p)]
    removed = [p for n, p in before.items() if n not in after]
    return changed, removed
