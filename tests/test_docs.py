"""The README documents every setting and every command (a doc gap is a bug)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.main import get_command

from headshots.cli import app
from headshots.config import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


def env_names(name: str) -> list[str]:
    field = Settings.model_fields[name]
    alias = field.validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        return [str(choice) for choice in choices]
    return [f"HEADSHOTS_{name.upper()}"]


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_in_the_readme(name: str) -> None:
    assert any(f"`{env}`" in README for env in env_names(name)), name


@pytest.mark.parametrize("command", sorted(get_command(app).commands))  # type: ignore[attr-defined]
def test_every_command_is_in_the_readme(command: str) -> None:
    assert f"headshots {command}" in README


ROOT = Path(__file__).parents[1]
CODE_FOLDERS = ("src", "tests", "bench")
DECISIONS = {path.name[:4] for path in (ROOT / "docs" / "decisions").glob("[0-9]*.md")}


def code_files() -> list[Path]:
    return sorted(
        path
        for folder in CODE_FOLDERS
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".md", ".sh", ".html", ".js") and "artifacts" not in path.parts
    )


def test_code_cites_decision_notes_that_exist_not_an_outside_tracker() -> None:
    # The issue tracker is not in the repository: a reader of the code can
    # follow a decision note, not an issue number.
    import re

    tracker = re.compile(r"\bissues?[ -]#?\d", re.IGNORECASE)
    decision = re.compile(r"\b(?:decision |docs/decisions/)(\d{4})")
    problems = []
    for path in code_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        where = path.relative_to(ROOT)
        problems += [f"{where}: cites {m.group(0)!r}" for m in tracker.finditer(text)]
        problems += [
            f"{where}: cites decision {m.group(1)}, which does not exist"
            for m in decision.finditer(text)
            if m.group(1) not in DECISIONS
        ]
    assert problems == []
