"""A real browser (Debian's Chromium through Playwright) against a real uvicorn."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headshots.runtime import Runtime, build_runtime
from headshots.web.app import create_app
from tests.support import InstantEngine, LiveServer, make_settings, unavailable

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).parents[1] / "artifacts" / "screenshots"


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="package")
def sample_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped samples, labelled as the test engine's own so its pages show them."""
    from headshots.web.samples import INDEX, SHIPPED

    folder = tmp_path_factory.mktemp("samples") / "files"
    shutil.copytree(SHIPPED, folder)
    (folder / INDEX).write_text('{"engine": "instant"}')
    return folder


@pytest.fixture
def live(tmp_path: Path, sample_files: Path) -> Iterator[tuple[str, Runtime]]:
    """The app on SQLite with the instant engine, served on 127.0.0.1."""
    InstantEngine.reset()
    runtime = build_runtime(make_settings(tmp_path, None, samples_dir=sample_files))
    server = LiveServer(create_app(runtime, run_consumer=True))
    try:
        yield server.url, runtime
    finally:
        server.stop()
        runtime.close()
