"""The reference pages are generated from the code and current: every hook, command,
option and config key is documented (engine/docs.py)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import attrs
import click
import pytest

from engine import config as cfg
from engine import hookspecs
from engine.cli import main as cli
from engine.docs import config_page, hook_names, main, markdown_of, public_modules

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_generated_pages_are_current() -> None:
    assert main(["--check", "--docs", str(DOCS)]) == 0, "run: python -m engine.docs"


def sections(text: str) -> dict[str, str]:
    """Markdown headings `` `name` `` (levels 2 to 4) -> the text up to the next one."""
    parts = re.split(r"^#{2,4} `([^`]+)`$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_command_argument_and_option_is_documented() -> None:
    documented = sections((DOCS / "cli.md").read_text())
    seen = []

    def walk(cmd: click.Command, path: list[str], parent: click.Context | None) -> None:
        ctx = click.Context(cmd, info_name=path[-1], parent=parent, **cmd.context_settings)
        name = " ".join(path)
        assert name in documented, f"{name} has no section in docs/cli.md"
        seen.append(name)
        for param in cmd.get_params(ctx):
            if getattr(param, "hidden", False):
                continue
            if isinstance(param, click.Argument):
                assert f"`{param.human_readable_name}`" in documented[name], (name, param.name)
            for opt in (*param.opts, *param.secondary_opts):
                if isinstance(param, click.Option):
                    assert opt in documented[name], (name, opt)
        if isinstance(cmd, click.Group):
            for sub in cmd.commands:
                walk(cmd.commands[sub], [*path, sub], ctx)

    walk(cli, ["engine"], None)
    assert {"engine", "engine backtest", "engine run", "engine config check"} <= set(seen)


def test_the_config_reference_has_every_key_of_the_core_sections() -> None:
    text = config_page()
    documented = sections(text)
    for title, cls in {
        "[engine]": cfg.EngineSection,
        "[[instruments]]": cfg.InstrumentConfig,
        "[paper]": cfg.PaperSection,
        "[trading]": cfg.TradingSection,
        "[metrics]": cfg.MetricsSection,
        "[logging]": cfg.LoggingSection,
        "StrategyKeys": cfg.StrategyKeys,
        "CheckKeys": cfg.CheckKeys,
        "RuntimeGuardKeys": cfg.RuntimeGuardKeys,
    }.items():
        keys = re.findall(r"^\| `([a-z_]+)` \|", documented[title], flags=re.M)
        assert keys == [a.name for a in attrs.fields(cls)], title
    assert "[resilience.default]" in documented and "[resilience.plugins.NAME]" in documented
    # validators and the #: comments become notes
    assert "| `initial_cash` | decimal | `100000` | > 0 |" in text
    assert 'one of `"halted"`, `"reducing"`; the state a restarted run trades in' in text
    assert "expected 'halted' or 'reducing'" in text  # an undocumented validator, asked
    for kind in cfg.COMPONENT_SECTIONS:
        assert f"[`{kind.hook}`](hooks/{kind.hook}.md)" in text


def test_docstrings_become_markdown() -> None:
    doc = (
        "Uses :class:`~engine.errors.ConfigError` and :func:`engine.config.positive`.\n\n"
        "Example::\n\n    x = 1\n    print(x)\n\nTOML::\n\n    [engine]\n    name = 'a'\n\nEnd."
    )
    assert markdown_of(doc) == (
        "Uses `ConfigError` and `engine.config.positive`.\n\n"
        "Example:\n\n```python\nx = 1\nprint(x)\n```\n\n"
        "TOML:\n\n```toml\n[engine]\nname = 'a'\n```\n\nEnd.\n"
    )


def test_every_hook_has_a_page_and_the_index_links_it() -> None:
    index = (DOCS / "hooks.md").read_text()
    for name in hook_names(hookspecs):
        assert (DOCS / "hooks" / f"{name}.md").exists(), name
        assert f"(hooks/{name}.md)" in index, name


def test_every_public_module_has_an_api_page() -> None:
    modules = public_modules()
    assert modules[0] == "engine" and {"engine.records", "engine.config"} <= set(modules)
    assert not any(".builtins" in m for m in modules)
    for module in modules[1:]:
        assert f"::: {module}\n" in (DOCS / "api" / f"{module}.md").read_text()


@pytest.fixture
def site_copy(tmp_path: Path) -> Path:
    """A copy of docs/ and mkdocs.yml to regenerate freely."""
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    return tmp_path / "docs"


def test_check_reports_stale_pages_orphans_and_navigation(
    site_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orphan = site_copy / "hooks" / "engine_removed.md"
    orphan.write_text("# engine_removed\n")
    (site_copy / "hooks" / "engine_guards.md").write_text("# edited by hand\n")
    nav = site_copy.parent / "mkdocs.yml"
    nav.write_text(nav.read_text().replace("          - hooks/engine_feeds.md\n", ""))
    assert main(["--check", "--docs", str(site_copy)]) == 1
    err = capsys.readouterr().err
    assert f"{site_copy / 'hooks' / 'engine_guards.md'} is out of date" in err
    assert f"{orphan} is no longer generated" in err
    assert f"{nav} is out of date" in err
    assert main(["--docs", str(site_copy)]) == 0
    assert not orphan.exists() and "- hooks/engine_feeds.md" in nav.read_text()
    assert main(["--check", "--docs", str(site_copy)]) == 0


def test_a_site_without_its_generated_navigation_is_reported(
    site_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nav = site_copy.parent / "mkdocs.yml"
    nav.write_text(nav.read_text().replace("# end generated: api\n", ""))
    assert main(["--check", "--docs", str(site_copy)]) == 1
    assert "'# begin generated: api' has no '# end generated: api' after it" in (
        capsys.readouterr().err
    )
