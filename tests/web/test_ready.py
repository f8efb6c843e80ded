"""/readyz: every part checked, and which model a local engine runs."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from headshots.engines.flux_models import KONTEXT
from headshots.runtime import build_runtime
from headshots.web.app import create_app
from tests.engines.test_flux_local import needs_ml
from tests.engines.test_flux_models import KLEIN_4B, weights_folder
from tests.support import make_settings


def test_ready_names_the_local_model_and_its_licence(tmp_path: Path) -> None:
    needs_ml()  # the engine is ready only where torch and diffusers are installed
    weights = weights_folder(tmp_path / "FLUX.2-klein-4B", transformer=KLEIN_4B, is_distilled=True)
    settings = make_settings(tmp_path, None, engine="flux-local", flux_weights_dir=weights)
    runtime = build_runtime(settings)
    try:
        with TestClient(create_app(runtime)) as client:
            response = client.get("/readyz")
    finally:
        runtime.close()
    body = response.json()
    assert body["checks"]["engine"] == "ok", body
    assert body["model"] == {
        "family": "flux2-klein-4b",
        "model": "FLUX.2 [klein] 4B",
        "licence": "Apache-2.0",
        "commercial_use": True,
    }


def test_ready_says_why_a_weights_folder_cannot_be_used(tmp_path: Path) -> None:
    weights = weights_folder(tmp_path / "weights", transformer=KLEIN_4B)
    (weights / "transformer" / "config.json").write_text('{"_class_name": "UNet2DModel"}')
    # Start-up accepts it (the engine is built on first use); /readyz refuses.
    settings = make_settings(tmp_path, None, engine="flux-local", flux_weights_dir=weights)
    runtime = build_runtime(settings)
    try:
        with TestClient(create_app(runtime)) as client:
            response = client.get("/readyz")
    finally:
        runtime.close()
    assert response.status_code == 503
    assert "the folder mixes two models" in response.json()["checks"]["engine"]
    assert "model" not in response.json()


def test_ready_only_looks_and_leaves_the_engine_as_it_was(tmp_path: Path) -> None:
    weights = weights_folder(tmp_path / "weights", transformer=KLEIN_4B, is_distilled=True)
    settings = make_settings(tmp_path, None, engine="flux-local", flux_weights_dir=weights)
    runtime = build_runtime(settings)
    try:
        engine = runtime.engine("flux-local")
        before = dict(vars(engine))
        # The operator swaps the weights under the running service.
        shutil.rmtree(weights)
        weights_folder(weights, KONTEXT)
        with TestClient(create_app(runtime)) as client:
            response = client.get("/readyz")
        assert runtime.engine("flux-local") is engine
        assert vars(engine) == before
    finally:
        runtime.close()
    # Not ready, and it says why: the running engine is not the folder's model.
    assert response.status_code == 503
    assert "Restart it to use the new weights" in response.json()["checks"]["engine"]
    assert "model" not in response.json()
