"""Generate the reference pages of the documentation site from the code.

Pages written under ``docs/`` (each says it is generated; never edit one by hand):

* ``hooks.md``, the hook index, and ``hooks/<hook>.md``, one page per hook, from
  the specifications' docstrings in :mod:`engine.hookspecs`;
* ``cli.md``: every command, argument and option, from the click command tree;
* ``config-reference.md``: every key of the core's config sections, from the attrs
  classes in :mod:`engine.config` (and the ``#:`` comments above their fields);
* ``components.md``: every built-in component and its options;
* ``metrics.md``: the engine's metric catalogue;
* ``api/index.md`` and ``api/<module>.md``: the public API (mkdocstrings renders
  one page per public module, a module of the core that defines ``__all__``).

The navigation of the site (``mkdocs.yml``) lists the hook and API pages between
``# begin generated: NAME`` and ``# end generated: NAME`` lines, rewritten here too.

    python -m engine.docs           # write every page (and remove stale ones)
    python -m engine.docs --check   # exit 1 if any page is missing, stale or orphaned
"""

from __future__ import annotations

import ast
import enum
import inspect
import re
import sys
import textwrap
import types
import typing
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import click

from engine import hookspecs

__all__ = [
    "api_pages",
    "cli_page",
    "components_page",
    "config_page",
    "hook_names",
    "hook_pages",
    "hooks_page",
    "main",
    "markdown_of",
    "metrics_page",
    "nav_blocks",
    "pages",
    "public_modules",
    "undocumented_hooks",
    "update_nav",
]

#: Record hooks whose records are configured as components, with their config section.
_CONFIGURED = {
    "engine_feeds": "[feed]",
    "engine_brokers": "[broker]",
    "engine_strategies": "[[strategies]]",
    "engine_filters": "[[filters]]",
    "engine_validation_rules": "[[validation_rules]]",
    "engine_guards": "[[guards]]",
    "engine_runtime_guards": "[[runtime_guards]]",
    "engine_alert_sinks": "[[alert_sinks]]",
    "engine_metrics_stores": "[[metrics_stores]]",
    "engine_exporters": "[[exporters]]",
}

#: Folders of docs/ whose pages are all generated (a page no longer generated is stale).
GENERATED_DIRS = ("hooks", "api")

_PACKAGE = Path(hookspecs.__file__).resolve().parent


def _generated(source: str) -> str:
    return f"Generated from `{source}` by `python -m engine.docs`; do not edit."


# -- docstrings ---------------------------------------------------------------------------

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`(~?)([^`]+)`")


def _role(match: re.Match[str]) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


_TOML_TABLE = re.compile(r"^\[\[?[\w.\-]+\]\]?\s*(#.*)?$", re.M)


def _language(code: str) -> str:
    """``toml`` for a block with a TOML table header, ``python`` for one that parses
    as Python, ``text`` otherwise."""
    if _TOML_TABLE.search(code):
        return "toml"
    try:
        ast.parse(code)
    except SyntaxError:
        return "text"
    return "python"


def markdown_of(doc: str) -> str:
    """A docstring written with reStructuredText conventions, as Markdown.

    A paragraph ending in ``::`` followed by an indented block becomes the paragraph
    (ending in ``:``) and a fenced code block (TOML, Python or plain text); roles
    such as ``:class:`~engine.errors.ConfigError``` become code spans.
    """
    lines = _ROLE.sub(_role, doc).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or lines[j][:1] in (" ", "\t")):
            j += 1
        block = textwrap.dedent("\n".join(lines[i + 1 : j])).strip("\n")
        if line.rstrip().endswith("::") and block and not lines[i + 1].strip():
            head = line.rstrip()[:-1]
            out += [head] if head.strip() != ":" else []
            out += ["", f"```{_language(block)}", *block.splitlines(), "```", ""]
            i = j
            continue
        out.append(line)
        i += 1
    return "\n".join(out).strip() + "\n"


def _summary(doc: str) -> str:
    """The first paragraph of a docstring on one line, safe in a table cell."""
    first = doc.strip().split("\n\n", 1)[0]
    return " ".join(_ROLE.sub(_role, first).split()).replace("|", "\\|")


# -- hooks --------------------------------------------------------------------------------


def hook_names(module: types.ModuleType = hookspecs) -> list[str]:
    """The hooks ``module`` specifies: its functions marked ``@hookspec``, sorted."""
    marker = f"{module.PROJECT}_spec"  # where pluggy's HookspecMarker keeps its options
    return sorted(n for n, v in vars(module).items() if callable(v) and hasattr(v, marker))


def _implementers() -> dict[str, list[str]]:
    """Hook -> the built-in plugins implementing it."""
    from engine.plugins import PluginManager, PluginSettings

    found: dict[str, list[str]] = {}
    for info in PluginManager(PluginSettings(builtin_only=True)).infos():
        for hook in info.hooks:
            found.setdefault(hook, []).append(info.name)
    return found


def _record_link(type_name: str, prefix: str) -> str:
    return f"[`{type_name}`]({prefix}api/engine.records.md#engine.records.{type_name})"


def _hook_page(module: types.ModuleType, name: str, implementers: list[str]) -> str:
    fn = getattr(module, name)
    records: Mapping[str, str] = getattr(module, "RECORD_HOOKS", {})
    signature = str(inspect.signature(fn)).replace("'", "")
    if name in records:
        kind = (
            f"**Record hook**: returns a list of {_record_link(records[name], '../')} records."
            " The core calls each plugin's implementation separately, stamps `plugin`,"
            " validates and orders the records."
        )
    else:
        kind = (
            "**Lifecycle hook**: called with the engine, plugin by plugin; an"
            " implementation may be `async`."
        )
    built_in = ", ".join(f"`{p}`" for p in implementers) if implementers else "none"
    return (
        "\n".join(
            [
                f"# {name}",
                "",
                _generated("engine/hookspecs.py"),
                "",
                "```python",
                f"@hookimpl\ndef {name}{signature}: ...",
                "```",
                "",
                kind,
                "",
                f"Built-in plugins implementing it: {built_in}.",
                "",
                markdown_of(inspect.getdoc(fn) or "").rstrip(),
                "",
                "All hooks: [hooks](../hooks.md).",
            ]
        )
        + "\n"
    )


def hooks_page(module: types.ModuleType = hookspecs) -> str:
    """Markdown for the hook index: every hook, its kind and summary, with a link to
    its own page."""
    records: Mapping[str, str] = getattr(module, "RECORD_HOOKS", {})
    lines = [
        "# Hooks",
        "",
        _generated("engine/hookspecs.py"),
        "",
        "A plugin implements hooks: functions marked `@engine.hookimpl` whose names",
        "match the specifications below. Record hooks take no arguments and return a",
        "list of records; the core calls each plugin's implementation separately,",
        "stamps `plugin`, validates and orders the records. Lifecycle hooks receive the",
        "engine and may be `async`. Each hook has its own page, with an example.",
        "",
        "| hook | kind | returns | what |",
        "|---|---|---|---|",
    ]
    for name in hook_names(module):
        doc = inspect.getdoc(getattr(module, name)) or ""
        kind, returns = (
            ("record", _record_link(records[name], ""))
            if name in records
            else (
                "lifecycle",
                "-",
            )
        )
        lines.append(f"| [`{name}`](hooks/{name}.md) | {kind} | {returns} | {_summary(doc)} |")
    return "\n".join(lines) + "\n"


def hook_pages(module: types.ModuleType = hookspecs) -> dict[str, str]:
    """The hook pages of ``module``: docs-relative path -> Markdown (the index
    ``hooks.md`` and ``hooks/<hook>.md`` for each hook)."""
    implementers = _implementers()
    out = {"hooks.md": hooks_page(module)}
    for name in hook_names(module):
        out[f"hooks/{name}.md"] = _hook_page(module, name, implementers.get(name, []))
    return out


def undocumented_hooks(
    module: types.ModuleType = hookspecs, docs: Path = Path("docs")
) -> dict[str, str]:
    """Hooks of ``module`` that are not documented: hook -> what is missing.

    A hook is documented when its specification has a docstring with an ``Example::``
    block, its page ``docs/hooks/<hook>.md`` exists and is what ``python -m
    engine.docs`` generates, the index ``docs/hooks.md`` links to it, and the site's
    navigation (``mkdocs.yml`` beside ``docs/``) lists it.
    """
    generated = hook_pages(module)
    index = docs / "hooks.md"
    index_text = index.read_text() if index.exists() else ""
    site = docs.parent / "mkdocs.yml"
    nav_text = site.read_text() if site.exists() else ""
    problems: dict[str, str] = {}
    for name in hook_names(module):
        doc = inspect.getdoc(getattr(module, name)) or ""
        page = docs / "hooks" / f"{name}.md"
        if not doc:
            problems[name] = "the hook specification has no docstring"
        elif "Example::" not in doc:
            problems[name] = "the docstring has no Example:: block"
        elif not page.exists():
            problems[name] = f"{page} is missing: run python -m engine.docs"
        elif page.read_text() != generated[f"hooks/{name}.md"]:
            problems[name] = f"{page} is out of date: run python -m engine.docs"
        elif f"(hooks/{name}.md)" not in index_text:
            problems[name] = f"{index} does not link to it: run python -m engine.docs"
        elif not re.search(rf"^\s*- hooks/{name}\.md\s*$", nav_text, re.M):
            problems[name] = f"{site} does not list hooks/{name}.md: run python -m engine.docs"
    return problems


# -- metrics, components --------------------------------------------------------------------


def metrics_page() -> str:
    """Markdown for the engine's metric catalogue."""
    from engine.kernel.catalogue import CATALOGUE, EMITTED

    lines = [
        "# Metrics",
        "",
        _generated("engine/kernel/catalogue.py"),
        "",
        "The engine derives these from its own state whenever metrics are collected: every",
        "`[metrics] interval` of engine time while a metrics store or exporter is configured,",
        "and once at the end of every run (`RunResult.metrics`). Nothing is counted per",
        "event. Plugins add their own through `ctx.metrics` / `engine.metrics`",
        "(`counter(name, **labels).inc()`, `gauge(...).set(v)`, `histogram(...).observe(v)`).",
        "Stores and exporters that raise are counted in `engine_plugin_errors_total`",
        "{plugin, kind} and logged once per collection.",
        "",
        "| metric | type | labels | meaning |",
        "|---|---|---|---|",
    ]
    for name, (kind, labels, text) in CATALOGUE.items():
        lines.append(f"| `{name}` | {kind.value} | {', '.join(labels) or '-'} | {text} |")
    lines += [
        "",
        "## Emitted on demand or by plugins",
        "",
        "| metric | type | labels | meaning | from |",
        "|---|---|---|---|---|",
    ]
    for name, (kind, labels, text, source) in EMITTED.items():
        lines.append(
            f"| `{name}` | {kind.value} | {', '.join(labels) or '-'} | {text} | {source} |"
        )
    lines += [
        "",
        "Histograms have cumulative buckets (`engine_order_span_seconds`: 10 µs to 1 h;",
        "the others 1 µs to 10 s) plus their sum and count. Resilience metrics appear",
        "once a policy has been used (an asynchronous venue in a paper or live run, or a",
        "plugin's `resilient(...)` call).",
    ]
    return "\n".join(lines) + "\n"


def _default(a: attrs.Attribute[Any]) -> str:
    if a.default is attrs.NOTHING:
        return "required"
    factory = getattr(a.default, "factory", None)
    if factory is not None:
        return f"`{factory()!r}`"
    return f"`{a.default!r}`"


def components_page() -> str:
    """Markdown for every built-in component: section, options (from the attrs
    config classes), types, defaults and documentation."""
    from engine.plugins import PluginManager, PluginSettings

    pm = PluginManager(PluginSettings(builtin_only=True))
    lines = [
        "# Built-in components",
        "",
        "Generated from the built-in plugins' records and config classes by",
        "`python -m engine.docs`; do not edit. A component is chosen in the config by",
        '`type = "name"`; its options are the other keys of its table.',
    ]
    for hook, section in _CONFIGURED.items():
        records = pm.collect(hook)
        if not records:
            continue
        lines += ["", f"## {section}"]
        for r in records:
            lines += ["", f"### `{r.name}` ({r.plugin})", ""]
            doc = inspect.getdoc(r.config_type) if r.config_type else None
            text = [t for t in (r.description, doc or inspect.getdoc(r.factory)) if t]
            lines.append("\n\n".join(dict.fromkeys(text)))
            if r.config_type is None:
                lines += ["", "No options."]
                continue
            hints = typing.get_type_hints(r.config_type)
            lines += ["", "| option | type | default |", "|---|---|---|"]
            for a in attrs.fields(r.config_type):
                kind = str(hints.get(a.name, a.type)).replace("typing.", "").replace("decimal.", "")
                kind = kind.replace("<class '", "").replace("'>", "").replace("|", "or")
                lines.append(f"| `{a.name}` | {kind} | {_default(a)} |")
    return "\n".join(lines) + "\n"


# -- configuration reference ------------------------------------------------------------------


def _field_docs(cls: type) -> dict[str, str]:
    """Field -> the ``#:`` comment lines right above its definition in ``cls``."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    docs: dict[str, str] = {}
    for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            i, comment = node.lineno - 2, list[str]()
            while i >= 0 and lines[i].strip().startswith("#:"):
                comment.insert(0, lines[i].strip()[2:].strip())
                i -= 1
            if comment:
                docs[node.target.id] = " ".join(comment)
    return docs


def _toml_type(tp: Any) -> str:
    """How a field's type is written in TOML."""
    from engine.config import Secret

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        text = " or ".join(_toml_type(a) for a in rest)
        return f"{text} (optional)" if len(rest) < len(args) else text
    if origin is tuple:
        return f"array of {_toml_type(args[0])}"
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        return f"table of {_toml_type(args[1])}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return " or ".join(f'`"{m.value}"`' for m in tp)
    named = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if tp in named:
        return named[tp]
    if tp is Decimal:
        return "decimal"
    if tp is Secret:
        return 'secret (a string or `{ env = "NAME" }`)'
    return f"`{getattr(tp, '__name__', tp)}`"


def _toml_value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, tuple | list):
        return f"`[{', '.join(_toml_value(v).strip('`') for v in value)}]`"
    return f"`{value}`"


def _constraint(validator: Any) -> str:
    """What a field's attrs validator requires, in words."""
    if validator is None:
        return ""
    if hasattr(validator, "options"):  # attrs.validators.in_
        return "one of " + ", ".join(_toml_value(o) for o in validator.options)
    inner = getattr(validator, "validator", None)
    if inner is not None:  # attrs.validators.optional
        return _constraint(inner)
    if hasattr(validator, "_validators"):  # attrs.validators.and_
        return "; ".join(filter(None, (_constraint(v) for v in validator._validators)))
    code = getattr(validator, "__code__", None)
    if code is not None and set(code.co_freevars) >= {"low", "high"}:  # engine.config.between
        cells = dict(zip(code.co_freevars, validator.__closure__ or (), strict=True))
        return f"between {cells['low'].cell_contents} and {cells['high'].cell_contents}"
    known = {
        "positive": "> 0",
        "non_negative": ">= 0",
        "interval": "an interval: `250ms`, `1s`, `1m`, `4h`, `1d`",
        "interval_or_zero": "an interval, or `0s`",
    }
    name = getattr(validator, "__name__", "")
    if name in known:
        return known[name]
    doc = (inspect.getdoc(validator) or "").split("\n\n", 1)[0]
    if doc:
        return " ".join(doc.removeprefix("attrs validator:").split())
    try:  # an undocumented validator: what it says about a value no field accepts
        validator(None, None, "\x00")
    except ValueError as exc:
        return str(exc).split(", got ", 1)[0]
    except Exception:
        pass
    return f"checked by `{name}`"


def _is_config_class(tp: Any) -> bool:
    return isinstance(tp, type) and attrs.has(tp)


def _config_table(cls: type, title: str, level: int) -> list[str]:
    """A heading, the class's docstring and one row per key; nested config classes
    (a table of tables) get their own heading below."""
    hints = typing.get_type_hints(cls)
    docs = _field_docs(cls)
    lines = ["", f"{'#' * level} `{title}`", ""]
    doc = inspect.getdoc(cls) or ""
    if doc:
        lines += [markdown_of(doc).rstrip(), ""]
    rows, nested = [], []
    for a in attrs.fields(cls):
        tp = hints.get(a.name, a.type)
        args = typing.get_args(tp)
        if _is_config_class(tp):
            nested.append((f"{title.strip('[]')}.{a.name}", tp))
            continue
        origin = typing.get_origin(tp)
        mapping = isinstance(origin, type) and issubclass(origin, Mapping)
        if mapping and args and _is_config_class(args[1]):
            nested.append((f"{title.strip('[]')}.{a.name}.NAME", args[1]))
            continue
        if a.default is attrs.NOTHING:
            default = "required"
        elif getattr(a.default, "factory", None) is not None:
            default = _toml_value(a.default.factory())
        else:
            default = _toml_value(a.default)
        text = "; ".join(filter(None, (_constraint(a.validator), docs.get(a.name, ""))))
        text = text.replace("|", "\\|")
        rows.append(f"| `{a.name}` | {_toml_type(tp)} | {default} | {text} |")
    if rows:
        lines += ["| key | type | default | notes |", "|---|---|---|---|", *rows]
    elif not nested:
        lines.append("No keys.")
    for sub_title, sub in nested:
        lines += _config_table(sub, f"[{sub_title}]", min(level + 1, 4))
    return lines


def config_page() -> str:
    """Markdown for every key of the core's configuration sections, from their attrs
    classes (``EngineConfig``'s fields that are config classes, and the keys the core
    reads from component tables)."""
    from engine import config as cfg

    lines = [
        "# Configuration reference",
        "",
        _generated("engine/config.py"),
        "",
        "Every key of the core's sections, from the attrs classes that structure them;",
        "the notes come from their validators and the comments on their fields. How the",
        "file is read, strictness and error messages: [Configuration](config.md). The",
        "options of every built-in component: [Built-in components](components.md).",
        "",
        "## Core sections",
    ]
    hints = typing.get_type_hints(cfg.EngineConfig)
    for a in attrs.fields(cfg.EngineConfig):
        tp = hints[a.name]
        args = typing.get_args(tp)
        if _is_config_class(tp):
            lines += _config_table(tp, f"[{a.name}]", 3)
        elif typing.get_origin(tp) is tuple and args and _is_config_class(args[0]):
            lines += _config_table(args[0], f"[[{a.name}]]", 3)
    lines += [
        "",
        "## Component sections",
        "",
        "A component is a table whose `type` names a record returned by a plugin's hook;",
        "the table's other keys are that record's options (its `config_type`), besides",
        "the keys the core reads itself (below).",
        "",
        "| section | hook | required | default | core keys |",
        "|---|---|---|---|---|",
    ]
    core_keys: dict[type, list[str]] = {}
    for kind in cfg.COMPONENT_SECTIONS:
        section = f"[[{kind.section}]]" if kind.many else f"[{kind.section}]"
        default = ", ".join(_toml_value(dict(i).get("type")) for i in kind.default_items) or (
            f'`type = "{kind.default}"`' if kind.default else "-"
        )
        if kind.core_keys is cfg.NoKeys:
            keys = "-"
        else:
            core_keys.setdefault(kind.core_keys, []).append(section)
            keys = f"[{kind.core_keys.__name__}](#{kind.core_keys.__name__.lower()})"
        required = "yes" if kind.required and not kind.default else "no"
        lines.append(
            f"| `{section}` | [`{kind.hook}`](hooks/{kind.hook}.md) | {required} | {default} |"
            f" {keys} |"
        )
    for cls, sections in core_keys.items():
        lines += _config_table(cls, cls.__name__, 3)
        lines += ["", "Read from: " + ", ".join(f"`{s}`" for s in sections) + "."]
    return "\n".join(lines) + "\n"


# -- command line ----------------------------------------------------------------------------


def _command_lines(cmd: click.Command, path: list[str], parent: click.Context | None) -> list[str]:
    # the command's own context settings (help option names...), as the CLI uses them
    ctx = click.Context(cmd, info_name=path[-1], parent=parent, **cmd.context_settings)
    usage = cmd.get_usage(ctx).removeprefix("Usage: ")
    lines = ["", f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`", "", "```", usage, "```", ""]
    lines.append(inspect.cleandoc(cmd.help or ""))
    params = [p for p in cmd.get_params(ctx) if p.get_help_record(ctx)]
    if params:
        lines.append("")
        for p in params:
            record = p.get_help_record(ctx)
            assert record is not None
            if isinstance(p, click.Argument):
                what = "argument" + (", required" if p.required else "")
                lines.append(f"- `{record[0]}` ({what}){': ' + record[1] if record[1] else ''}")
            else:
                lines.append(f"- `{record[0]}`: {record[1]}")
    if cmd.epilog:
        lines += ["", inspect.cleandoc(cmd.epilog)]
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            lines += _command_lines(cmd.commands[name], [*path, name], ctx)
    return lines


def cli_page() -> str:
    """Markdown for every built-in command (plugins may add more at run time)."""
    from engine.cli import main as cli

    lines = [
        "# Command line",
        "",
        _generated("engine/cli.py"),
        "Plugins may add commands through `engine_cli_commands`; `engine --help` lists them.",
        "",
        "Exit codes: 0 success; 2 a user mistake (config, data), printed as `path: problem`",
        "lines; 3 a plugin error in strict mode; 1 anything else.",
    ]
    lines += _command_lines(cli, ["engine"], None)
    return "\n".join(lines) + "\n"


# -- API reference -----------------------------------------------------------------------------


def _defines_all(path: Path) -> bool:
    for node in ast.parse(path.read_text()).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


def public_modules() -> list[str]:
    """The public modules of the core: every module of the ``engine`` package and its
    sub-packages (not the built-in plugins, not a private ``_name``) that defines
    ``__all__``; ``engine`` itself first."""
    found = []
    for path in sorted(_PACKAGE.rglob("*.py")):
        parts = path.relative_to(_PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if "builtins" in parts or any(p.startswith("_") for p in parts):
            continue
        folder = path.parent.relative_to(_PACKAGE.parent)
        packages = [folder, *folder.parents][:-1]  # engine/a/b: engine/a/b, engine/a, engine
        if not all((_PACKAGE.parent / d / "__init__.py").exists() for d in packages):
            continue  # in a folder that is not a package (yet)
        if _defines_all(path):
            found.append(".".join(parts))
    return sorted(found, key=lambda m: (m != "engine", m))


def _api_index(modules: list[str]) -> str:
    import engine

    lines = [
        "# API reference",
        "",
        "Generated by `python -m engine.docs`; do not edit.",
        "",
        markdown_of(inspect.getdoc(engine) or "").rstrip(),
        "",
        "## `engine`",
        "",
        "The names `from engine import ...` gives, and where each is documented:",
        "",
        "| name | defined in |",
        "|---|---|",
    ]
    for name in sorted(engine.__all__, key=str.lower):
        if name.startswith("__"):
            continue
        obj = getattr(engine, name)
        where = getattr(obj, "__module__", None)
        if not isinstance(where, str) or where == "engine" or where not in modules:
            where = next((m for m in modules if m != "engine" and name in _all_of(m)), None)
        if where is not None and name in _all_of(where):
            lines.append(f"| [`{name}`]({where}.md#{where}.{name}) | `{where}` |")
        else:
            lines.append(f"| `{name}` | `{where or 'engine'}` |")
    lines += ["", "## Modules", "", "Every public module of the core, a page each:", ""]
    lines += [f"- [`{m}`]({m}.md)" for m in modules if m != "engine"]
    return "\n".join(lines) + "\n"


def _all_of(module: str) -> list[str]:
    import importlib

    return list(getattr(importlib.import_module(module), "__all__", []))


def api_pages() -> dict[str, str]:
    """The API reference: ``api/index.md`` (the top-level ``engine`` names) and one
    mkdocstrings page per public module: docs-relative path -> Markdown."""
    modules = public_modules()
    out = {"api/index.md": _api_index(modules)}
    for m in modules:
        if m == "engine":
            continue
        out[f"api/{m}.md"] = f"# `{m}`\n\n{_generated(m)}\n\n::: {m}\n"
    return out


# -- the site ----------------------------------------------------------------------------------


def pages(module: types.ModuleType = hookspecs) -> dict[str, str]:
    """Every generated page: docs-relative path -> Markdown."""
    return {
        **hook_pages(module),
        "cli.md": cli_page(),
        "config-reference.md": config_page(),
        "components.md": components_page(),
        "metrics.md": metrics_page(),
        **api_pages(),
    }


def nav_blocks(generated: Mapping[str, str]) -> dict[str, list[str]]:
    """The generated parts of the site's navigation: block name -> page paths."""
    hooks = sorted(p for p in generated if p.startswith("hooks/"))
    api = [p for p in generated if p.startswith("api/") and p != "api/index.md"]
    return {"hooks": ["hooks.md", *hooks], "api": ["api/index.md", *api]}


def update_nav(text: str, blocks: Mapping[str, list[str]]) -> str:
    """``mkdocs.yml`` text with each generated block replaced by its pages (one
    ``- path`` line each, indented like the block's begin line)."""
    lines = text.splitlines()
    for name, paths in blocks.items():
        begin = f"# begin generated: {name}"
        end = f"# end generated: {name}"
        starts = [i for i, line in enumerate(lines) if line.strip() == begin]
        if len(starts) != 1:
            raise ValueError(f"mkdocs.yml needs exactly one line '{begin}'")
        start = starts[0]
        stop = next((i for i in range(start + 1, len(lines)) if lines[i].strip() == end), None)
        if stop is None:
            raise ValueError(f"mkdocs.yml: '{begin}' has no '{end}' after it")
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        lines[start + 1 : stop] = [f"{indent}- {p}" for p in paths]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, verify) the generated pages under ``docs/`` and the
    generated navigation in ``mkdocs.yml`` (beside ``docs/``)."""
    args = sys.argv[1:] if argv is None else argv
    docs = Path(args[args.index("--docs") + 1]) if "--docs" in args else Path("docs")
    site = docs.parent / "mkdocs.yml"
    generated = pages()
    files = {docs / path: text for path, text in generated.items()}
    if not site.exists():
        print(f"{site} not found (the site's configuration, beside {docs})", file=sys.stderr)
        return 1
    try:
        files[site] = update_nav(site.read_text(), nav_blocks(generated))
    except ValueError as exc:
        print(f"{site}: {exc}", file=sys.stderr)
        return 1
    stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    orphans = [
        p for d in GENERATED_DIRS if (docs / d).is_dir() for p in sorted((docs / d).glob("*.md"))
    ]
    orphans = [p for p in orphans if p not in files]
    if "--check" in args:
        for p in stale:
            print(f"{p} is out of date: run python -m engine.docs", file=sys.stderr)
        for p in orphans:
            print(f"{p} is no longer generated: run python -m engine.docs", file=sys.stderr)
        return 1 if stale or orphans else 0
    for p, text in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists() or p.read_text() != text:
            p.write_text(text)
            print(f"wrote {p}")
    for p in orphans:
        p.unlink()
        print(f"removed {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
