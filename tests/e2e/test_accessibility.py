"""Every page a person or an organiser meets, checked by axe-core in Chromium.

axe-core (the engine of the common accessibility checkers) runs on each page
at desktop and phone width, at each step of an order and of a team. Its
script is injected by the test, so this browser context bypasses the pages'
Content-Security-Policy; the app itself still serves no inline script.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from headshots.runtime import Runtime
from tests.e2e.test_browser import DESKTOP, FIXTURES, PHONE_390
from tests.support import InstantEngine, unavailable

pytestmark = pytest.mark.browser


def violations(page: Any) -> list[str]:
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        unavailable("axe-playwright-python is not installed (scripts/setup installs it)")
    found = Axe().run(page).response["violations"]
    return [
        f"{page.url}: {v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:3])
        for v in found
    ]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE_390], ids=["1280px", "390px"])
def test_no_page_of_an_order_or_a_team_has_an_accessibility_violation(
    browser: Any, live: tuple[str, Runtime], viewport: dict[str, int], monkeypatch: Any
) -> None:
    base, _ = live
    monkeypatch.setattr(InstantEngine, "takes_backdrop_colour", True)
    context = browser.new_context(viewport=viewport, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    found: list[str] = []
    try:
        for path in ("/", "/start", "/guide", "/privacy", "/teams/new", "/nothing-here"):
            page.goto(f"{base}{path}")
            found += violations(page)
        page.goto(f"{base}/start")
        with page.expect_navigation():
            page.set_input_files("#library", str(FIXTURES / "obama.jpg"))
        found += violations(page)  # the choice: tiers, styles, backdrops
        page.click("label.tier-option:has-text('Starter')")
        page.click("label.style-option:has-text('Corporate')")
        page.click("text=Make my headshots")
        page.wait_for_url(re.compile(r"/orders/[\w-]+$"))
        page.wait_for_selector("text=Your previews are ready", timeout=60_000)
        found += violations(page)  # previews, private link, redo and favourite buttons
        page.locator(".tile .enlarge").first.click()
        found += violations(page)  # the enlarged view
        page.keyboard.press("Escape")
        page.click("text=Pay and download")
        page.wait_for_selector("text=Confirm test payment")
        found += violations(page)  # the test checkout
        page.click("text=Confirm test payment")
        page.wait_for_selector("text=Your headshots are ready to download")
        found += violations(page)  # downloads and the zip's formats
        page.click("text=Delete everything…")
        found += violations(page)
        # An organiser's team page, and the invite a member opens.
        page.goto(f"{base}/teams/new")
        page.fill("#name", "Acme Ltd")
        page.fill("#seats", "3")
        page.click("text=Create the team")
        page.wait_for_url(re.compile(r"/teams/[\w-]+$"))
        found += violations(page)
        invite = page.locator("#invite")
        if invite.count():
            page.goto(invite.input_value())
            found += violations(page)
    finally:
        context.close()
    assert found == []
