"""Every image a person can download carries Content Credentials, and nothing of them.

A whole order runs through the API for each engine: studio for real, replicate
against the fake provider, flux-local on a tiny random pipeline. Each preview,
each clean PNG and each PNG of the zip is read back with the C2PA SDK itself.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import c2pa
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr

from headshots.credentials import images
from headshots.credentials.manifest import (
    ALGORITHMICALLY_ENHANCED,
    ASSERTION,
    COMPOSITE,
    TRAINED_ALGORITHMIC_MEDIA,
    made_by,
)
from headshots.imaging.codecs import encode_pixels
from headshots.runtime import Runtime, build_runtime
from headshots.web.app import create_app
from tests.fakes.replicate_server import TOKEN, FakeReplicate
from tests.support import auth, confirm_local_payment, make_settings, upload, wait_ready

FIXTURES = Path(__file__).parents[1] / "fixtures"
# A file name a person might give their selfie: it must not travel anywhere.
SELFIE_NAME = "ada-lovelace-passport-2026.jpg"
DEVELOPMENT_ONLY = {"signingCredential.untrusted"}


def read_back(data: bytes, mime: str) -> tuple[str, dict[str, Any], list[str]]:
    """(validation state, active manifest, validation failure codes) from the SDK."""
    with c2pa.Reader(mime, io.BytesIO(data)) as reader:
        report = json.loads(reader.json())
        state = reader.get_validation_state()
    active = report["manifests"][report["active_manifest"]]
    failures = [status["code"] for status in report.get("validation_status") or []]
    return state, active, failures


def assertion(manifest: dict[str, Any], label: str) -> dict[str, Any]:
    found = [a["data"] for a in manifest["assertions"] if a["label"].startswith(label)]
    assert found, f"no {label} assertion"
    return found[0]


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    server = FakeReplicate(delay=0.0).start()
    yield server
    server.stop()


def order_runtime(tmp_path: Path, engine: str, fake: FakeReplicate) -> Runtime:
    values: dict[str, Any] = {"engine": engine, "identity_rerolls": 0}
    if engine == "replicate":
        values.update(replicate_api_token=SecretStr(TOKEN), replicate_base_url=fake.url)
    runtime = build_runtime(make_settings(tmp_path, None, **values))
    if engine == "flux-local":
        # The tiny random pipeline of the engine's own tests, at its tiny sizes.
        from headshots.engines.flux_local import FluxLocalEngine
        from tests.engines.test_flux_local import TINY, needs_ml, save_tiny_kontext

        needs_ml()
        weights = save_tiny_kontext(tmp_path / "FLUX.1-Kontext-dev")
        settings = runtime.settings.model_copy(
            update={"flux_weights_dir": weights, "flux_steps": 2, "flux_device": "cpu"}
        )
        runtime._engines["flux-local"] = FluxLocalEngine(settings, TINY)
    return runtime


EXPECTED = {
    # engine: (style, digital source type, model recorded)
    "studio": ("corporate", COMPOSITE, None),
    "replicate": ("corporate", TRAINED_ALGORITHMIC_MEDIA, "black-forest-labs/flux-kontext-pro"),
    "flux-local": ("corporate", TRAINED_ALGORITHMIC_MEDIA, "FLUX.1-Kontext-dev"),
}


@pytest.mark.parametrize("engine", list(EXPECTED))
def test_every_downloadable_image_says_what_made_it_and_nothing_of_the_person(
    tmp_path: Path, fake: FakeReplicate, engine: str
) -> None:
    style, source_type, model = EXPECTED[engine]
    runtime = order_runtime(tmp_path, engine, fake)
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
            selfie = (FIXTURES / "grace_hopper.jpg").read_bytes()
            created = upload(client, selfie, tier="starter", styles=(style,), filename=SELFIE_NAME)
            assert created.status_code == 201, created.text
            order_id, token = created.json()["id"], created.json()["token"]
            ready = wait_ready(client, order_id, token, timeout=240)
            checkout = client.post(f"/api/orders/{order_id}/checkout", headers=auth(token))
            confirm_local_payment(client, checkout.json()["checkout_url"])

            outputs: list[tuple[str, bytes, str]] = []
            for variation in ready["variations"]:
                assert variation["status"] == "done", variation
                base = f"/api/orders/{order_id}/variations/{variation['id']}"
                outputs.append(
                    ("preview", client.get(f"{base}/preview", headers=auth(token)).content, "jpeg")
                )
                outputs.append(
                    ("download", client.get(f"{base}/download", headers=auth(token)).content, "png")
                )
                # The square and round formats are cut from the final image and
                # signed with the same credentials.
                for shape in ("square", "round"):
                    cut = client.get(f"{base}/download?format={shape}", headers=auth(token))
                    outputs.append((shape, cut.content, "png"))
            archive = client.get(
                f"/api/orders/{order_id}/download.zip?formats=portrait,square,round",
                headers=auth(token),
            )
            with zipfile.ZipFile(io.BytesIO(archive.content)) as bundle:
                outputs += [(f"zip {n}", bundle.read(n), "png") for n in bundle.namelist()]
    finally:
        runtime.close()

    assert len(outputs) == 4 * 4 + 4 * 3
    for where, data, kind in outputs:
        state, manifest, failures = read_back(data, f"image/{kind}")
        # A development certificate is untrusted; nothing else may fail.
        assert state == "Valid", (where, failures)
        assert set(failures) <= DEVELOPMENT_ONLY, (where, failures)
        actions = assertion(manifest, "c2pa.actions")["actions"]
        assert actions[0]["action"] == "c2pa.created"
        assert actions[0]["digitalSourceType"] == source_type, where
        made = assertion(manifest, ASSERTION)
        assert (made["engine"], made["model"], made["style"]) == (engine, model, style)
        assert manifest["claim_generator_info"][0]["name"] == "headshots"
        # No ingredient (the selfie), no thumbnail of anything.
        assert not manifest.get("ingredients"), where
        assert "thumbnail" not in manifest, where
        assert not any("thumbnail" in a["label"] for a in manifest["assertions"]), where
        # The plain IPTC marking, for readers without C2PA.
        assert f"<Iptc4xmpExt:DigitalSourceType>{source_type}<".encode() in data, where
        # Nothing of the person or their order, in any form, and no EXIF.
        for secret in (SELFIE_NAME, SELFIE_NAME.rsplit(".", 1)[0], order_id, token):
            assert secret.encode() not in data, (where, secret)
        assert b"Exif\x00" not in data and b"eXIf" not in data, where
        with Image.open(io.BytesIO(data)) as image:
            assert not image.getexif(), where


def test_the_studio_engine_says_its_defocused_backdrop_is_an_enhanced_photo() -> None:
    made = made_by("studio", "startup", {}, generative=False)
    assert made.source_type == ALGORITHMICALLY_ENHANCED
    assert made.generative is False and made.model is None


@pytest.mark.parametrize(
    ("engine", "source_type"),
    [
        ("studio", COMPOSITE),
        ("flux-local", TRAINED_ALGORITHMIC_MEDIA),
        ("replicate", TRAINED_ALGORITHMIC_MEDIA),
        # A plugin that cannot be loaded here is marked as AI-made, not hidden.
        ("nowhere.engine:Missing", TRAINED_ALGORITHMIC_MEDIA),
    ],
)
def test_the_mark_follows_what_the_engine_class_declares(
    tmp_path: Path, engine: str, source_type: str
) -> None:
    # Read from the class: no client, no weights, no torch needed.
    runtime = build_runtime(make_settings(tmp_path, None))
    try:
        made = images.facts(runtime.settings, engine, "corporate", {})
    finally:
        runtime.close()
    assert made.source_type == source_type
    assert made.generative is (source_type == TRAINED_ALGORITHMIC_MEDIA)


def test_a_download_before_the_final_png_is_signed_on_the_fly(tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path, None))
    try:
        raw = encode_pixels(Image.new("RGB", (64, 80), (120, 90, 60)))
        made = images.facts(runtime.settings, "replicate", "minimal", {"model": "some/model"})
        png = images.downloadable_png(runtime.settings, made, raw)
    finally:
        runtime.close()
    state, manifest, _ = read_back(png, "image/png")
    assert state == "Valid"
    assert assertion(manifest, ASSERTION)["model"] == "some/model"
    assert Image.open(io.BytesIO(png)).size == (64, 80)


def test_a_chosen_backdrop_over_the_photos_own_background_is_a_composite() -> None:
    # startup keeps the photo's own background, defocused; a chosen colour
    # replaces it with a painted one (decision 0016).
    assert (
        made_by("studio", "startup", {}, generative=False).source_type == ALGORITHMICALLY_ENHANCED
    )
    painted = made_by("studio", "startup", {"backdrop": "solid"}, generative=False)
    assert painted.source_type == COMPOSITE
