"""Sample results: made by the real studio engine from the shipped public-domain photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from headshots.runtime import Runtime
from headshots.styles import STYLE_IDS
from headshots.web.samples import SIZE, Samples, render_samples
from tests.support import make_settings


def test_every_style_gets_a_distinct_sample_and_a_second_run_renders_nothing(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, None)
    folder = tmp_path / "samples"
    written = render_samples(settings, folder)
    assert sorted(p.stem for p in written) == sorted(STYLE_IDS)
    images = {p.stem: Image.open(p) for p in written}
    assert all(image.format == "JPEG" and image.size == SIZE for image in images.values())
    # Same sitter, different styles: the looks must differ visibly.
    corporate = np.asarray(images["corporate"].convert("RGB"), dtype=float)
    minimal = np.asarray(images["minimal"].convert("RGB"), dtype=float)
    assert np.abs(corporate - minimal).mean() > 8
    assert render_samples(settings, folder) == []
    assert Samples(settings).ready() == {style_id: False for style_id in STYLE_IDS}
    assert not list(folder.glob("*.part"))


def test_pages_show_placeholders_until_the_samples_exist(
    client: TestClient, runtime: Runtime
) -> None:
    samples: Samples = client.app.state.samples  # type: ignore[attr-defined]
    landing = client.get("/").text
    samples.wait(timeout=120)
    assert "Sample on its way" in landing or 'src="/samples/' in landing
    assert all(samples.ready().values())
    landing = client.get("/").text
    assert "Sample on its way" not in landing
    assert landing.count('src="/samples/') == 4
    served = client.get("/samples/corporate.jpg")
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert client.get("/samples/pirate.jpg").status_code == 404
