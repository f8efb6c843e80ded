"""Sample pictures: real studio outputs, shown only when the studio engine makes the orders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from headshots.runtime import build_runtime
from headshots.styles import STYLE_IDS
from headshots.web.app import create_app
from headshots.web.samples import INDEX, SHIPPED, SIZE, Samples
from tests.support import make_settings


def landing_and_sample(tmp_path: Path, **overrides: object) -> tuple[str, int]:
    """The landing page's HTML and the status of one sample's URL, for these settings."""
    runtime = build_runtime(make_settings(tmp_path, None, **overrides))
    try:
        with TestClient(create_app(runtime, run_consumer=False)) as client:
            return client.get("/").text, client.get("/samples/corporate.jpg").status_code
    finally:
        runtime.close()


def test_the_shipped_samples_are_small_studio_outputs_with_their_provenance() -> None:
    samples = Samples.read(SHIPPED)
    assert samples.engine == "studio"
    found = samples.for_engine("studio")
    assert sorted(found) == sorted(STYLE_IDS)
    provenance = (SHIPPED / "PROVENANCE.md").read_text()
    made_from = json.loads((SHIPPED / INDEX).read_text())["styles"]
    for style_id, path in found.items():
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.size == SIZE
        assert path.stat().st_size <= 60_000, path.name
        # Each picture's row names its style, the engine and the photo it came from.
        row = next(line for line in provenance.splitlines() if line.startswith(f"| {path.name} "))
        assert f"| {style_id} | studio | {made_from[style_id]} |" in row
        assert "MIT" in row
    # The old astronaut and portrait sources are gone: only outputs ship.
    assert sorted(p.stem for p in SHIPPED.glob("*.jpg")) == sorted(STYLE_IDS)


def test_the_landing_page_shows_the_samples_with_the_studio_engine(tmp_path: Path) -> None:
    page, status = landing_and_sample(tmp_path, engine="studio")
    assert page.count('<img src="/samples/') == 4
    assert "data-no-samples" not in page
    assert status == 200


def test_a_generative_engine_is_never_shown_the_studio_samples(tmp_path: Path) -> None:
    page, status = landing_and_sample(tmp_path, engine="replicate", replicate_api_token="r8_x")
    assert '<img src="/samples/' not in page
    assert "No sample pictures are shown here" in page
    assert "generative AI model" in page
    assert status == 404


def test_an_operator_may_show_samples_of_their_own_engine(tmp_path: Path) -> None:
    # The test engine ("instant") stands for an operator's engine with samples of its own.
    own = tmp_path / "own-samples"
    shutil.copytree(SHIPPED, own)
    (own / INDEX).write_text(json.dumps({"engine": "instant"}))
    page, status = landing_and_sample(tmp_path, samples_dir=own)
    assert page.count('<img src="/samples/') == 4 and status == 200
    # Without a readable index the folder's pictures are not vouched for: none shown.
    (own / INDEX).unlink()
    page, status = landing_and_sample(tmp_path / "again", samples_dir=own)
    assert '<img src="/samples/' not in page and status == 404
