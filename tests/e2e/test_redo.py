"""Redo and favourites in a real browser: "Make again" remakes a tile in place, a star marks it.

Debian's Chromium, driven by Playwright, against the app on a real uvicorn
with the seeded test engine (tests/web/test_redo.py), whose images carry a
block of colour their seed picks: the tile's new image can be told from
the one it replaced. Screenshots land in tests/artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headshots.runtime import Runtime, build_runtime
from headshots.web.app import create_app
from tests.e2e.test_browser import no_console_errors, page, shot, upload_photo
from tests.support import InstantEngine, LiveServer, make_settings
from tests.web.test_redo import SeededEngine, close, colour_of, corner

pytestmark = pytest.mark.browser
__all__ = ["page"]  # the fixture, shared with the other browser tests


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[str, Runtime]]:
    InstantEngine.reset()
    SeededEngine.gate.set()
    SeededEngine.failing = set()
    SeededEngine.fail_all = False
    settings = make_settings(tmp_path, None, engine="seeded", redos_per_order=2)
    runtime = build_runtime(settings)
    server = LiveServer(create_app(runtime, run_consumer=True))
    try:
        yield server.url, runtime
    finally:
        SeededEngine.gate.set()
        server.stop()
        runtime.close()


def seed_of(tile: Any) -> str:
    # The tile's data-key is "status|seed|rerolling|redoing|redo failure".
    return str(tile.get_attribute("data-key")).split("|")[1]


def test_make_again_remakes_the_tile_in_place_and_a_favourite_is_marked(
    page: Any, seeded: tuple[str, Runtime]
) -> None:
    base, _ = seeded
    upload_photo(page, base, "obama.jpg")
    page.click("label.tier-option:has-text('Starter')")
    page.click("label.style-option:has-text('Corporate')")
    page.click("text=Make my headshots")
    page.wait_for_url(re.compile(r"/orders/[\w-]+$"))
    page.wait_for_selector("text=Your previews are ready", timeout=60_000)
    assert "2 left for this order" in page.inner_text("[data-redos]")

    tile = page.locator(".tile").first
    tile_id = tile.get_attribute("id")
    old_seed = seed_of(tile)
    old_src = tile.locator("img").get_attribute("src")

    # Held in the engine call: the tile keeps its image, with a note.
    SeededEngine.gate.clear()
    with page.expect_navigation():
        tile.locator("button:has-text('Make again')").click()
    remaking = page.locator(f"#{tile_id}")
    assert remaking.locator("[data-redoing]").is_visible()
    assert "Being made again" in remaking.inner_text()
    # The image it had stays shown (the page may have redrawn the tile meanwhile).
    kept = str(remaking.locator("img").get_attribute("src"))
    assert kept.split("?")[0] == str(old_src).split("?")[0]
    assert close(corner(page.request.get(f"{base}{kept}").body()), colour_of(int(old_seed)))
    assert remaking.locator("[data-redo]").is_hidden()  # not twice at once
    assert "1 left for this order" in page.inner_text("[data-redos]")
    shot(page, "redo-01-being-made-again")
    SeededEngine.gate.set()

    # The new image lands in the same tile, live (then the ready page reloads).
    page.wait_for_function(
        """([id, seed]) => {
            const tile = document.getElementById(id);
            return tile && tile.getAttribute('data-key').split('|')[1] !== seed
                && !tile.querySelector('[data-redoing]');
        }""",
        arg=[tile_id, old_seed],
        timeout=60_000,
    )
    page.wait_for_selector("text=Your previews are ready", timeout=60_000)
    remade = page.locator(f"#{tile_id}")
    assert page.locator(".tile").first.get_attribute("id") == tile_id  # in place
    new_seed = seed_of(remade)
    assert new_seed != old_seed
    src = remade.locator("img").get_attribute("src")
    shown = page.request.get(f"{base}{src}").body()
    assert close(corner(shown), colour_of(int(new_seed)))
    assert not close(corner(shown), colour_of(int(old_seed)), tolerance=10)
    shot(page, "redo-02-remade")

    star = remade.locator("[data-favourite] button")
    assert star.get_attribute("aria-pressed") == "false"
    with page.expect_navigation():
        star.click()
    star = page.locator(f"#{tile_id} [data-favourite] button")
    assert star.get_attribute("aria-pressed") == "true"
    others = page.locator(".tile:not(:first-child) [data-favourite] button[aria-pressed=true]")
    assert others.count() == 0
    shot(page, "redo-03-favourite")
    no_console_errors(page)
