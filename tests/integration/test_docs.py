"""The documentation site: it builds strictly, its generated configuration reference is current, and every
`vmpooler` command the pages show is one the installed command accepts."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from vmpooler.cli.entry import original_forms
from vmpooler.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent
CONSOLE_BLOCK = re.compile(r"^( *)```console\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_the_site_builds_strictly_with_every_provider_page_in_the_nav(tmp_path: Path) -> None:
    result = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr
    home = (tmp_path / "site" / "index.html").read_text()
    for page in ("cli", "configuration", "API", "providers", "operations", "migration", "dashboard"):
        assert (tmp_path / "site" / page / "index.html").is_file(), page
    # the site works offline: no page loads a script or a stylesheet from elsewhere (the theme's
    # highlight.js came from a CDN), and the generators beside the pages are not published
    for html in (tmp_path / "site").rglob("*.html"):
        remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(?:https?:)?//[^"]+"', html.read_text())
        assert remote == [], (html, remote)
    assert list((tmp_path / "site").glob("gen_*.py")) == []
    # the hook lists each provider page there is, so a page joins the nav by existing
    for page in sorted((DOCS / "providers").glob("*.md")):
        if page.name != "index.md":
            assert f'href="providers/{page.stem}/"' in home, f"{page.name} is not in the nav"


def test_a_nav_entry_without_its_page_fails_the_build(tmp_path: Path) -> None:
    """The strict build really refuses what it should: here, a nav entry naming a missing page."""
    config = tmp_path / "mkdocs.yml"
    text = (ROOT / "mkdocs.yml").read_text().replace("docs_dir: docs", f"docs_dir: {DOCS}")
    text = text.replace("docs/hooks/", f"{DOCS}/hooks/")
    config.write_text(text.replace("  - Operations: operations.md", "  - Operations: operations.md\n  - Gone: gone.md"))
    result = build(config, tmp_path / "site")
    assert result.returncode != 0
    assert "gone.md" in result.stderr


def test_the_configuration_reference_is_generated_from_the_current_models() -> None:
    result = subprocess.run(
        [sys.executable, "-B", str(DOCS / "gen_config_reference.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def shown_commands() -> list[tuple[str, list[str]]]:
    """Every ``$ vmpooler ...`` line of the pages' console blocks, as (page, arguments)."""
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        for match in CONSOLE_BLOCK.finditer(page.read_text()):
            for line in match.group(2).splitlines():
                command = line.strip().removeprefix("$ ")
                if line.strip().startswith("$ vmpooler"):
                    words = shlex.shlex(command, posix=True, punctuation_chars=True)
                    words.whitespace_split = True
                    args = []
                    for word in list(words)[1:]:
                        if word in {"|", ">", ">>", ";", "&&", "||"}:
                            break
                        args.append(word)
                    # as the `vmpooler` script reads them: the original's forms (`api manager`) become ours
                    found.append((page.relative_to(DOCS).as_posix(), original_forms(args, {})))
    return found


COMMANDS = shown_commands()


def test_the_pages_show_commands() -> None:
    pages = {page for page, _ in COMMANDS}
    assert {"cli.md", "index.md", "migration.md"} <= pages
    shown = {args[0] for _, args in COMMANDS if args and not args[0].startswith("-")}
    assert {"serve", "get", "disk", "token", "inventory", "purge", "migrate-from-ruby"} <= shown


@pytest.mark.parametrize(("page", "args"), COMMANDS, ids=[f"{p}:{' '.join(a)}" for p, a in COMMANDS])
def test_each_shown_command_parses(page: str, args: list[str]) -> None:
    """Its command path exists (``--help`` exits 0) and its options and arguments are accepted as written."""
    group = get_command(app)
    assert isinstance(group, TyperGroup)
    if args[0].startswith("-"):  # the completion options act when parsed (they install); only check they exist
        assert args[0] in {opt for param in group.params for opt in param.opts}, args
        return
    path: list[str] = []
    command = group
    rest = list(args)
    while isinstance(command, TyperGroup):
        if rest[0] not in command.commands and hasattr(command, "default_command"):  # `ondemand debian=2`
            rest = [command.default_command, *rest]
        name, rest = rest[0], rest[1:]
        found = command.get_command(typer.Context(command), name)
        assert found is not None, f"{page}: no command {' '.join([*path, name])!r}"
        path.append(name)
        command = found
    help_text = CliRunner().invoke(app, [*path, "--help"])
    assert help_text.exit_code == 0, help_text.output
    try:
        command.make_context(" ".join(["vmpooler", *path]), rest)
    except Exception as exc:  # typer's (vendored click's) usage errors: a bad option, value or argument
        pytest.fail(f"{page}: `vmpooler {' '.join(args)}` is refused: {exc}")
