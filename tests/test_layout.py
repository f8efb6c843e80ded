"""Imports run one way: the web layer calls the domain packages, never the reverse.

A use case that pages and the API share lives in orders/ (README, Layout);
the pages reach the JSON API's answers through web.responses, not web.api.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "headshots"


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, by its full name (``from a import b`` gives a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("package", ["orders", "jobs", "engines", "imaging", "storage", "payments"])
def test_no_domain_package_imports_the_web_layer(package: str) -> None:
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in sorted((SRC / package).rglob("*.py"))
        for name in sorted(imported(path))
        if name == "headshots.web" or name.startswith("headshots.web.")
    ]
    assert offenders == []


def test_the_pages_do_not_import_the_json_api() -> None:
    for module in ("pages.py", "events.py", "responses.py", "deps.py"):
        assert "headshots.web.api" not in imported(SRC / "web" / module), module
