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
