"""Team mode in a real browser: an organiser and two members, on a desktop and a phone.

The organiser creates the team, pays through the test checkout, copies the
invite link; two members open it, upload, and one gives a headshot; the
organiser watches, downloads the zip and ends the team. axe-core is not
installed in this project, so accessibility is checked as the other
browser tests check it: labels, no sideways scrolling, no console error.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headshots.runtime import Runtime
from tests.e2e.test_browser import DESKTOP, PHONE_390, fits_width, no_console_errors, shot
from tests.support import InstantEngine

pytestmark = pytest.mark.browser
FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture
def context(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A browser profile of its own per person: the organiser's cookies are not a member's."""
    viewport = getattr(request, "param", DESKTOP)
    opened: list[Any] = []

    def person() -> Any:
        made = browser.new_context(viewport=viewport, accept_downloads=True)
        opened.append(made)
        page = made.new_page()
        page.set_default_timeout(30_000)
        problems: list[str] = []
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.problems = problems
        return page

    yield person
    for made in opened:
        made.close()


@pytest.mark.parametrize("context", [DESKTOP, PHONE_390], indirect=True, ids=["1280", "390"])
def test_an_organiser_and_two_members(
    context: Any, live: tuple[str, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = live
    # The team's look includes a backdrop: the engine must be one that paints it.
    monkeypatch.setattr(InstantEngine, "takes_backdrop_colour", True)
    organiser = context()
    size = str(organiser.viewport_size["width"])

    organiser.goto(f"{base}/teams/new")
    organiser.fill("#name", "Acme Ltd")
    organiser.fill("#seats", "3")
    organiser.select_option("#backdrop", "navy")
    fits_width(organiser)
    shot(organiser, f"team-{size}-01-new")
    organiser.click("text=Create the team")
    organiser.wait_for_url(re.compile(r"/teams/[\w-]+$"))
    assert "Acme Ltd" in organiser.inner_text("h1")
    assert "0 used of 3" in organiser.inner_text("main")
    organiser.click("button:has-text('Pay')")
    assert "/pay/local/" in organiser.url
    assert "3 seats" in organiser.inner_text("main")
    organiser.click("text=Confirm test payment")
    organiser.wait_for_url(re.compile(r"/teams/[\w-]+\?paid=1$"))
    invite = organiser.input_value("#invite")
    assert "/t/" in invite
    organiser.click("[data-copy]")
    organiser.wait_for_selector("text=Copied")
    fits_width(organiser)
    shot(organiser, f"team-{size}-02-paid")

    members = []
    for name in ("Ada", None):
        member = context()
        member.goto(invite)
        assert "Acme Ltd" in member.inner_text("main")
        assert "Pay" not in member.inner_text("main")  # the team paid: no tier, no price
        fits_width(member)
        if name:
            member.fill("#display_name", name)
            shot(member, f"team-{size}-03-invite")
        with member.expect_navigation():
            member.set_input_files("#library", str(FIXTURES / "obama.jpg"))
        member.wait_for_url(re.compile(r"/orders/[\w-]+$"))
        members.append(member)

    ada = members[0]
    ada.wait_for_selector("text=Your headshots are ready to download", timeout=60_000)
    give = ada.locator("[data-team] button:has-text('Give')").first
    assert "organiser" in ada.inner_text("[data-team]")
    give.click()
    ada.wait_for_selector("[data-team] button:has-text('Take back')")
    fits_width(ada)
    shot(ada, f"team-{size}-04-picked")

    organiser.reload()
    table = organiser.inner_text("table.members")
    assert "Ada" in table and "picked" in table
    assert organiser.locator("main img").count() == 0  # no image of a member, ever
    with organiser.expect_download() as waiting:
        organiser.click("text=Download 1 picture")
    saved = waiting.value.path()
    with zipfile.ZipFile(io.BytesIO(Path(saved).read_bytes())) as archive:
        assert len(archive.namelist()) == 1 and archive.namelist()[0].startswith("01-ada-")
    shot(organiser, f"team-{size}-05-progress")
    organiser.click("button:has-text('End the team')")
    organiser.wait_for_selector("text=This team has ended")
    shot(organiser, f"team-{size}-06-ended")
    for page in (organiser, *members):
        no_console_errors(page)
