"""Meta-tests: every hook has a documentation page and at least one test that calls it.

**Documented** (:func:`engine.docs.undocumented_hooks`): the hook specification has a
docstring with an ``Example::`` block, its generated page ``docs/hooks/<hook>.md`` is
current, the index ``docs/hooks.md`` links to it and ``mkdocs.yml`` lists it in the
site's navigation.

**Called by a test** (:func:`untested_hooks`), a static rule over the sources, so it
holds whichever tests a run selects. A hook counts as called by a test when both:

1. *the engine calls it*: a module of the core (``engine/`` without ``builtins/``,
   ``testing/``, ``hookspecs.py`` and ``docs.py``) has a string literal equal to the
   hook's name. The engine calls every hook through its plugin manager by name
   (``collect(name)``, ``records(name)``, ``call_each(name)``, ``call_lifecycle(name)``,
   or the hook of a config section, ``ComponentKind``), so a hook no core module names
   is never called;
2. *a test hands an implementation of it to an engine*: a test module (a ``.py`` file
   under the pytest ``testpaths`` of pyproject.toml with at least one ``test*``
   function) registers plugins (it calls ``register(...)`` or ``register_plugin(...)``,
   or passes ``plugins=`` to a call) and either defines a function of the hook's name
   (or ``hookimpl(specname=name)``) decorated with ``hookimpl``, or registers a plugin
   it imports whose source does: a module (its module-level hookimpls, as in
   ``eng.register(engine_plugin_dask)``) or a class (its methods).

Built-in plugins that a test only names in a config do not count: a hook needs a test
of its own implementation contract, not only of one built-in behind it.

The last tests add a dummy hook specification to a copy of ``engine/hookspecs.py`` and
show that both checks name it, and stop naming it once it has a page and a test.
"""

from __future__ import annotations

import ast
import importlib.util
import tomllib
import types
from collections.abc import Iterable
from pathlib import Path

from engine import hookspecs
from engine.docs import hook_names, hook_pages, nav_blocks, undocumented_hooks, update_nav

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ENGINE = ROOT / "engine"


def core_files() -> list[Path]:
    """The engine's own modules: where a hook can be called from."""
    skip = {ENGINE / "hookspecs.py", ENGINE / "docs.py"}
    return [
        p
        for p in sorted(ENGINE.rglob("*.py"))
        if p not in skip and not {"builtins", "testing"} & set(p.relative_to(ENGINE).parts)
    ]


def files_under_testpaths() -> list[Path]:
    """Every Python file under the pytest testpaths."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    paths = config["tool"]["pytest"]["ini_options"]["testpaths"]
    return [p for folder in paths for p in sorted((ROOT / folder).rglob("*.py"))]


def _strings(tree: ast.AST) -> set[str]:
    return {
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else None


def hookimpls(tree: ast.AST) -> set[str]:
    """Hooks implemented in a module: functions decorated with ``hookimpl``."""
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            if _name(call.func if call else decorator) != "hookimpl":
                continue
            specname = [
                k.value.value
                for k in (call.keywords if call else [])
                if k.arg == "specname" and isinstance(k.value, ast.Constant)
            ]
            found.add(str(specname[0]) if specname else node.name)
    return found


def _has_tests(tree: ast.Module) -> bool:
    scopes = [
        tree,
        *(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.startswith("Test")),
    ]
    return any(
        isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test")
        for scope in scopes
        for n in scope.body
    )


def handed_to_engines(tree: ast.AST) -> list[ast.expr]:
    """What a module hands to engines: the first argument of its ``register(...)`` and
    ``register_plugin(...)`` calls, and the items of its ``plugins=`` arguments."""
    handed: list[ast.expr] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if _name(node.func) in ("register", "register_plugin"):
            handed += node.args[:1]
        for k in node.keywords:
            if k.arg == "plugins":
                items = k.value.elts if isinstance(k.value, ast.List | ast.Tuple) else [k.value]
                handed += items
    return handed


def _imports(tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted name it was imported as."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = (
                    a.name if a.asname else a.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _parsed(module: str) -> ast.Module | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not (spec.origin or "").endswith(".py"):
        return None
    return ast.parse(Path(str(spec.origin)).read_text())


def imported_hookimpls(tree: ast.AST) -> set[str]:
    """Hooks implemented by what a module imports and hands to engines: an imported
    plugin module (its module-level hookimpls) or an imported plugin class (its
    methods), as in ``eng.register(engine_plugin_dask)`` or ``plugins=[Plugin()]``."""
    imports = _imports(tree)
    found: set[str] = set()
    for expr in handed_to_engines(tree):
        target = expr.func if isinstance(expr, ast.Call) else expr
        if not isinstance(target, ast.Name) or target.id not in imports:
            continue
        dotted = imports[target.id]
        module = _parsed(dotted)
        if module is not None:  # a plugin module
            functions = [
                n for n in module.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            found |= hookimpls(ast.Module(body=functions, type_ignores=[]))
            continue
        parent, _, name = dotted.rpartition(".")
        module = _parsed(parent) if parent else None
        for node in module.body if module is not None else []:
            if isinstance(node, ast.ClassDef) and node.name == name:  # a plugin class
                found |= hookimpls(node)
    return found


def implemented_hooks(tests: Iterable[Path]) -> set[str]:
    """Hooks that test modules implement and hand to engines (rule 2)."""
    found: set[str] = set()
    for path in tests:
        tree = ast.parse(path.read_text())
        if _has_tests(tree) and handed_to_engines(tree):
            found |= hookimpls(tree) | imported_hookimpls(tree)
    return found


def untested_hooks(
    module: types.ModuleType = hookspecs,
    core: Iterable[Path] | None = None,
    tests: Iterable[Path] | None = None,
) -> dict[str, str]:
    """Hooks of ``module`` that no test calls (see the module docstring): hook -> why."""
    core = core_files() if core is None else core
    tests = files_under_testpaths() if tests is None else tests
    named = set().union(*(_strings(ast.parse(p.read_text())) for p in core))
    implemented = implemented_hooks(tests)
    problems = {}
    for name in hook_names(module):
        if name not in named:
            problems[name] = "the engine never calls it: no module of the core names it"
        elif name not in implemented:
            problems[name] = "no test hands an implementation of it to an engine"
    return problems


def test_every_hook_is_documented() -> None:
    assert undocumented_hooks(hookspecs, DOCS) == {}


def test_every_hook_is_called_by_the_engine_and_implemented_by_a_test() -> None:
    assert untested_hooks() == {}


def test_the_rule_sees_every_kind_of_implementation() -> None:
    tree = ast.parse(
        "import engine\n"
        "from engine import hookimpl\n"
        "class P:\n"
        "    @hookimpl\n"
        "    def engine_guards(self): ...\n"
        "    @engine.hookimpl(tryfirst=True)\n"
        "    async def engine_startup(self, engine): ...\n"
        "    @hookimpl(specname='engine_feeds')\n"
        "    def feeds(self): ...\n"
        "def engine_filters(): ...\n"  # not decorated: not an implementation
    )
    assert hookimpls(tree) == {"engine_guards", "engine_startup", "engine_feeds"}


def test_the_rule_follows_imported_plugins(tmp_path: Path) -> None:
    module, cls = tmp_path / "test_module.py", tmp_path / "test_class.py"
    module.write_text(
        "from engine.builtins import guards\n\ndef test_it(eng):\n    eng.register(guards)\n"
    )
    cls.write_text(
        "from test_hookspecs import JournalPlugin\n\n"
        "def test_it(make):\n"
        "    make(plugins=[JournalPlugin()])\n"
    )
    assert implemented_hooks([module]) == {"engine_guards"}
    assert implemented_hooks([cls]) == {"engine_journals"}
    module.write_text(module.read_text().replace("eng.register(guards)", "assert guards"))
    assert implemented_hooks([module]) == set()


# -- a hook added without documentation or test --------------------------------------------

DUMMY = '''

@hookspec
def engine_dummy_hook() -> list[Any]:
    """A hook added without a page or a test.

    Example::

        from engine import hookimpl

        @hookimpl
        def engine_dummy_hook():
            return []
    """
    raise NotImplementedError
'''


def spec_copy(tmp_path: Path, extra: str, name: str = "hookspecs_copy") -> types.ModuleType:
    """A copy of engine/hookspecs.py with ``extra`` source appended, as a module."""
    path = tmp_path / f"{name}.py"
    path.write_text(Path(hookspecs.__file__).read_text() + extra)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_hook_added_without_a_page_or_a_test_fails_both_checks(tmp_path: Path) -> None:
    copy = spec_copy(tmp_path, DUMMY)
    assert "engine_dummy_hook" in hook_names(copy)
    page = DOCS / "hooks" / "engine_dummy_hook.md"
    # the copy's other hooks are reported exactly as the real ones (none, when the
    # meta-tests above pass); the dummy hook on top
    assert undocumented_hooks(copy, DOCS) == {
        **undocumented_hooks(hookspecs, DOCS),
        "engine_dummy_hook": f"{page} is missing: run python -m engine.docs",
    }
    assert untested_hooks(copy) == {
        **untested_hooks(hookspecs),
        "engine_dummy_hook": "the engine never calls it: no module of the core names it",
    }


def test_the_checks_pass_once_the_hook_has_a_page_and_a_test(tmp_path: Path) -> None:
    copy = spec_copy(tmp_path, DUMMY)
    docs = tmp_path / "docs"
    for path, text in hook_pages(copy).items():
        (docs / path).parent.mkdir(parents=True, exist_ok=True)
        (docs / path).write_text(text)
    nav = "nav:\n  - Hooks:\n      # begin generated: hooks\n      # end generated: hooks\n"
    blocks = {"hooks": nav_blocks(hook_pages(copy))["hooks"]}
    (tmp_path / "mkdocs.yml").write_text(update_nav(nav, blocks))
    assert undocumented_hooks(copy, docs) == {}

    caller = tmp_path / "core.py"  # the engine calling the hook by name, as it does
    caller.write_text('def run(pm):\n    return pm.collect("engine_dummy_hook")\n')
    core = [*core_files(), caller]
    real = untested_hooks(hookspecs)
    assert untested_hooks(copy, core) == {
        **real,
        "engine_dummy_hook": "no test hands an implementation of it to an engine",
    }
    test = tmp_path / "test_dummy.py"
    test.write_text(
        "from engine import hookimpl\n\n"
        "class Plugin:\n"
        "    @hookimpl\n"
        "    def engine_dummy_hook(self):\n"
        "        return []\n\n"
        "def test_dummy(engine):\n"
        "    engine.register(Plugin())\n"
    )
    assert untested_hooks(copy, core, [*files_under_testpaths(), test]) == real
    # an implementation in a module that registers nothing does not count
    test.write_text(test.read_text().replace("engine.register(Plugin())", "Plugin()"))
    assert "engine_dummy_hook" in untested_hooks(copy, core, [*files_under_testpaths(), test])


def test_a_hook_without_an_example_or_with_a_stale_page_is_reported(tmp_path: Path) -> None:
    bare = DUMMY.replace("Example::", "Example:")
    assert undocumented_hooks(spec_copy(tmp_path, bare, "bare"), DOCS) == {
        **undocumented_hooks(hookspecs, DOCS),
        "engine_dummy_hook": "the docstring has no Example:: block",
    }
    source = Path(hookspecs.__file__).read_text()
    changed = source.replace('"""Risk guards (', '"""Risk guards, reworded (', 1)
    assert changed != source
    path = tmp_path / "changed.py"
    path.write_text(changed)
    spec = importlib.util.spec_from_file_location("changed", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = DOCS / "hooks" / "engine_guards.md"
    assert undocumented_hooks(module, DOCS) == {
        **undocumented_hooks(hookspecs, DOCS),
        "engine_guards": f"{page} is out of date: run python -m engine.docs",
    }
