"""The backdrop a person chooses, through the API: honoured by the studio engine, told
to hosted models in their own terms, refused with a sentence where it cannot be."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from headshots.backdrops import NAMED, parse_backdrop, with_backdrop
from headshots.engines.replicate.models import MODELS, build_input
from headshots.runtime import build_runtime
from headshots.styles import get_style
from headshots.web.app import create_app
from tests.support import auth, confirm_local_payment, make_settings, wait_ready

FIXTURES = Path(__file__).parents[1] / "fixtures"
SELFIE = (FIXTURES / "obama.jpg").read_bytes()


def order_with(client: TestClient, backdrop: str, **extra: str) -> object:
    return client.post(
        "/api/orders",
        data={"tier": "starter", "styles": "corporate", "backdrop": backdrop, **extra},
        files={"selfie": ("me.jpg", SELFIE, "image/jpeg")},
    )


@pytest.mark.parametrize(
    "backdrop", ["purple", "#12345", "#GGGGGG", "1F2A44", "rgb(1, 2, 3)", "n" * 300]
)
def test_a_backdrop_we_do_not_know_is_refused_with_a_sentence(
    client: TestClient, backdrop: str
) -> None:
    refused = order_with(client, backdrop)
    assert refused.status_code == 422
    assert refused.json()["error"] == "invalid_backdrop"
    assert "#RRGGBB" in refused.json()["detail"]


def test_an_engine_that_cannot_paint_a_colour_says_so_before_anything_is_paid(
    client: TestClient,
) -> None:
    # The instant test engine declares no backdrop colour.
    refused = order_with(client, "navy")
    assert refused.status_code == 422
    assert refused.json()["error"] == "backdrop_not_offered"
    assert "cannot paint a backdrop colour" in refused.json()["detail"]
    # Each style's own is always possible.
    assert order_with(client, "style").status_code == 201


@pytest.mark.parametrize("backdrop", ["navy", "#C8102E"])
def test_the_studio_engine_paints_the_colour_asked_in_every_corner(
    tmp_path: Path, backdrop: str
) -> None:
    runtime = build_runtime(make_settings(tmp_path, None, engine="studio"))
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
            created = order_with(client, backdrop)
            assert created.status_code == 201, created.text
            order = created.json()
            assert order["backdrop"] == parse_backdrop(backdrop).name  # type: ignore[union-attr]
            ready = wait_ready(client, order["id"], order["token"], timeout=120)
            checkout = client.post(
                f"/api/orders/{order['id']}/checkout", headers=auth(order["token"])
            )
            confirm_local_payment(client, checkout.json()["checkout_url"])
            want = np.array(parse_backdrop(backdrop).rgb, dtype=float)  # type: ignore[union-attr]
            for variation in ready["variations"]:
                png = client.get(
                    f"/api/orders/{order['id']}/variations/{variation['id']}/download",
                    headers=auth(order["token"]),
                ).content
                pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)
                # The top corners: the bottom ones hold the person's shoulders.
                for corner in (pixels[:40, :40], pixels[:40, -40:]):
                    assert np.abs(corner.reshape(-1, 3).mean(axis=0) - want).max() < 2
    finally:
        runtime.close()


def test_a_prompted_model_is_told_the_colour_and_a_named_model_gets_its_nearest() -> None:
    selfie = "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode()
    navy = with_backdrop(get_style("corporate"), parse_backdrop("navy"))
    prompted = build_input(
        MODELS["black-forest-labs/flux-kontext-pro"], navy, selfie, 7, (1024, 1280)
    )
    assert "navy blue (#1F2A44)" in prompted["prompt"]
    named = MODELS["flux-kontext-apps/professional-headshot"]
    assert build_input(named, navy, selfie, 7, (1024, 1280))["background"] == "black"
    cream = with_backdrop(get_style("executive"), parse_backdrop("cream"))
    assert build_input(named, cream, selfie, 7, (1024, 1280))["background"] == "white"
    # Without a choice, the style's own name.
    assert build_input(named, get_style("startup"), selfie, 7, (1024, 1280))["background"] == (
        "office"
    )
    assert NAMED["navy"] == (31, 42, 68)
