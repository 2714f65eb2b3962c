"""Rules of the layout that can be checked: the core never imports a plugin; built-in
plugins use only the public API; every public object is documented."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import engine

PACKAGE = Path(engine.__file__).parent


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
    return found


def test_the_core_never_imports_a_builtin_plugin() -> None:
    core = [p for p in PACKAGE.rglob("*.py") if "builtins" not in p.relative_to(PACKAGE).parts]
    offenders = {str(p): m for p in core for m in imports(p) if m.startswith("engine.builtins")}
    assert not offenders


def test_builtin_plugins_use_only_the_public_api() -> None:
    offenders = {}
    for path in (PACKAGE / "builtins").glob("*.py"):
        for module in imports(path):
            if (
                module.startswith("engine")
                and module != "engine"
                and not module.startswith("engine.builtins")
            ):
                offenders[path.name] = module
    assert not offenders


def test_every_public_name_is_documented() -> None:
    missing = [
        n for n in engine.__all__ if n != "__version__" and not inspect.getdoc(getattr(engine, n))
    ]
    assert not missing


def test_the_package_is_typed() -> None:
    assert (PACKAGE / "py.typed").exists()
