"""What every place a person reads says about the styles, per engine.

The studio engine keeps the person's own clothes: no style text may promise
a suit. A generative engine dresses the person as the style's prompt says:
its styles name the wardrobe.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from headshots.cli import app
from headshots.config import get_settings
from headshots.runtime import build_runtime
from headshots.styles import OWN_CLOTHES, STYLES
from headshots.web.app import create_app
from tests.support import make_settings
from tests.web.test_pages import csrf_of, start_upload

GARMENTS = re.compile(
    r"\b(suits?|shirts?|t-shirts?|overshirts?|knit\w*|jackets?|sweaters?|jumpers?|"
    r"tailor\w*|collars?|ties?|tops?|blazers?|crew-necks?|hoodies?|dress(es)?|"
    r"wardrobe|outfits?|smart casual|layers)\b",
    re.IGNORECASE,
)
ENGINES: dict[str, dict[str, Any]] = {
    "studio": {"engine": "studio"},
    "replicate": {"engine": "replicate", "replicate_api_token": "r8_test"},
}


class _Text(HTMLParser):
    """The text a person sees on a page (no tags, scripts or styles)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._hidden += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def seen(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def everything_read(tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Each place's style text with ``engine`` configured: pages, CLI and API."""
    settings = make_settings(tmp_path, None, **ENGINES[engine])
    runtime = build_runtime(settings)
    texts: dict[str, str] = {}
    try:
        # No consumer: the order page names its styles before anything is made.
        with TestClient(create_app(runtime, run_consumer=False)) as client:
            texts["landing page"] = seen(client.get("/").text)
            draft_url = start_upload(client).headers["location"]
            choose = client.get(draft_url)
            texts["style cards"] = seen(choose.text)
            chosen = client.post(
                draft_url,
                data={"csrf": csrf_of(choose), "tier": "executive", "styles": list(STYLES_IDS)},
                follow_redirects=False,
            )
            assert chosen.status_code == 303, chosen.text
            texts["order page"] = seen(client.get(chosen.headers["location"]).text)
            texts["GET /api/styles"] = " ".join(
                style["description"] for style in client.get("/api/styles").json()["styles"]
            )
    finally:
        runtime.close()
    monkeypatch.setenv("HEADSHOTS_ENGINE", engine)
    monkeypatch.setenv("HEADSHOTS_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_test")
    get_settings.cache_clear()
    listed = CliRunner().invoke(app, ["styles"], env={"COLUMNS": "400"})
    get_settings.cache_clear()
    assert listed.exit_code == 0, listed.output
    texts["headshots styles"] = " ".join(listed.output.split())
    return texts


STYLES_IDS = [style.id for style in STYLES]
DESCRIBED = ("style cards", "order page", "GET /api/styles", "headshots styles")


def test_with_the_studio_engine_no_style_promises_clothes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = everything_read(tmp_path, "studio", monkeypatch)
    for where, text in texts.items():
        assert not GARMENTS.findall(text), (where, GARMENTS.findall(text))
    for where in DESCRIBED:
        # Every style says the clothes stay, and startup keeps its own background.
        assert texts[where].count(OWN_CLOTHES) == len(STYLES), where
        assert "Your photo's own background, softly blurred" in texts[where], where
        assert "office" not in texts[where], where


def test_with_a_generative_engine_the_styles_name_their_wardrobe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = everything_read(tmp_path, "replicate", monkeypatch)
    for where in DESCRIBED:
        text = texts[where]
        for style in STYLES:
            assert style.wardrobe in text, (where, style.id)
        assert OWN_CLOTHES not in text, where
        assert "modern open-plan office" in text, where
    assert "stating that AI made it" in texts["order page"]
