"""The `headshots` command as a person uses it: generate, styles, cleanup."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from PIL import Image
from typer.testing import CliRunner

from headshots.cli import app
from headshots.config import Settings
from headshots.engines.replicate.models import MODELS as HOSTED_MODELS
from headshots.styles import STYLE_IDS

FIXTURES = Path(__file__).parent / "fixtures"
runner = CliRunner()


@pytest.fixture(scope="module")
def heic_selfie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The obama portrait as an iPhone would send it: HEIC with GPS in its EXIF."""
    exif = Image.Exif()
    exif[0x010F] = "CLI-MARKER-MAKE"
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 29.0)
    heif = pillow_heif.from_pillow(Image.open(FIXTURES / "obama.jpg"))
    buffer = io.BytesIO()
    heif.save(buffer, quality=90, exif=exif.tobytes())
    path = tmp_path_factory.mktemp("heic") / "my-selfie.heic"
    path.write_bytes(buffer.getvalue())
    return path


def test_generate_makes_four_different_headshots_per_style_and_a_report(
    settings: Settings, heic_selfie: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            *("generate", str(heic_selfie), "--style", "corporate", "--style", "friendly"),
            *("--out", str(out), "--seed", "11"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["engine"]["name"] == "studio"
    assert report["engine"]["generative"] is False
    assert "no generative" in report["engine"]["description"].lower()
    assert report["input"]["format"] == "HEIF"
    assert report["input"]["size"] == [910, 1137]
    assert len(report["input"]["face_box"]) == 4
    assert [v["seed"] for v in report["variations"]] == [11, 12, 13, 14] * 2
    images = {}
    for entry in report["variations"]:
        assert entry["status"] == "done"
        assert entry["seconds"] > 0
        path = out / entry["file"]
        with Image.open(path) as image:
            assert image.size == (1024, 1280)
            assert not image.info.get("exif")
            images[entry["file"]] = np.asarray(image.convert("RGB"), dtype=np.int16)
        assert b"CLI-MARKER-MAKE" not in path.read_bytes()
    corporate = [images[f"corporate-{i}.png"] for i in range(1, 5)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(corporate[i] - corporate[j]).mean() > 3
    assert np.abs(images["corporate-1.png"] - images["friendly-1.png"]).mean() > 10


@pytest.mark.parametrize(
    ("photo", "message"),
    [
        ("group_of_five.jpg", "more than one person"),
        ("no_face_street.jpg", "could not find a face"),
        ("PROVENANCE.md", "not a photo we can read"),
        ("missing.jpg", "There is no file at"),
    ],
)
def test_generate_refuses_with_one_line_and_a_nonzero_exit(
    settings: Settings, tmp_path: Path, photo: str, message: str
) -> None:
    result = runner.invoke(
        app, ["generate", str(FIXTURES / photo), "--style", "corporate", "--out", str(tmp_path)]
    )
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:")
    assert message in lines[0]
    assert not (tmp_path / "report.json").exists()


def test_generate_refuses_an_unknown_style(settings: Settings, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["generate", str(FIXTURES / "obama.jpg"), "--style", "pirate", "--out", str(tmp_path)],
    )
    assert result.exit_code == 1
    assert "no style called 'pirate'" in result.output
    assert "corporate" in result.output


def test_generate_paints_a_chosen_backdrop_and_writes_each_format(
    settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            *("generate", str(FIXTURES / "obama.jpg"), "--style", "corporate"),
            *("--variations", "1", "--backdrop", "#C8102E", "--formats", "portrait,square,round"),
            *("--out", str(out), "--engine", "studio"),
        ],
    )
    assert result.exit_code == 0, result.output
    made = {path.name: Image.open(path) for path in out.glob("*.png")}
    assert sorted(made) == [
        "corporate-1-portrait.png",
        "corporate-1-round.png",
        "corporate-1-square.png",
    ]
    assert made["corporate-1-portrait.png"].size == (1024, 1280)
    assert made["corporate-1-square.png"].size == (1024, 1024)
    assert made["corporate-1-round.png"].mode == "RGBA"
    corner = made["corporate-1-portrait.png"].convert("RGB").getpixel((10, 10))
    assert max(abs(a - b) for a, b in zip(corner, (200, 16, 46), strict=True)) <= 2


@pytest.mark.parametrize(
    ("option", "value", "sentence"),
    [("--backdrop", "purple", "not one we know"), ("--formats", "oval", "no format called")],
)
def test_generate_refuses_a_backdrop_or_format_it_does_not_know(
    settings: Settings, tmp_path: Path, option: str, value: str, sentence: str
) -> None:
    result = runner.invoke(
        app,
        [
            *("generate", str(FIXTURES / "obama.jpg"), "--style", "corporate"),
            *(option, value, "--out", str(tmp_path)),
        ],
    )
    assert result.exit_code == 1
    assert sentence in result.output
    assert not list(tmp_path.glob("*.png"))


def test_styles_lists_the_six_presets(settings: Settings) -> None:
    result = runner.invoke(app, ["styles"])
    assert result.exit_code == 0
    for style_id in STYLE_IDS:
        assert style_id in result.output


def test_cleanup_runs_one_sweep(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from headshots.config import get_settings
    from tests.support import new_master_key

    monkeypatch.setenv("HEADSHOTS_MASTER_KEY", new_master_key())
    get_settings.cache_clear()
    result = runner.invoke(app, ["cleanup"])
    assert result.exit_code == 0, result.output
    assert "0 orders expired" in result.output
    monkeypatch.delenv("HEADSHOTS_MASTER_KEY")
    get_settings.cache_clear()
    refused = runner.invoke(app, ["cleanup"])
    assert refused.exit_code == 1
    assert "HEADSHOTS_MASTER_KEY" in refused.output


def test_serve_names_the_local_model_and_its_licence(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import uvicorn

    from headshots.config import get_settings
    from tests.engines.test_flux_models import KLEIN_4B, weights_folder
    from tests.support import credentials_env, new_master_key

    weights = weights_folder(tmp_path / "FLUX.2-klein-4B", transformer=KLEIN_4B, is_distilled=True)
    monkeypatch.setenv("HEADSHOTS_MASTER_KEY", new_master_key())
    for name, value in credentials_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HEADSHOTS_ENGINE", "flux-local")
    monkeypatch.setenv("HEADSHOTS_FLUX_WEIGHTS_DIR", str(weights))
    get_settings.cache_clear()
    # The server itself is not started: what it prints before is the point.
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    result = runner.invoke(app, ["serve"])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "flux-local: FLUX.2 [klein] 4B; licence Apache-2.0: commercial use allowed" in (
        " ".join(result.output.split())
    )


def test_generate_takes_the_number_of_variations_from_the_settings(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HEADSHOTS_VARIATIONS", "2")
    out = tmp_path / "out"
    photo = str(FIXTURES / "obama.jpg")
    result = runner.invoke(
        app, ["generate", photo, "--style", "minimal", "--out", str(out), "--seed", "5"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert [v["seed"] for v in report["variations"]] == [5, 6]
    assert sorted(p.name for p in out.glob("*.png")) == ["minimal-1.png", "minimal-2.png"]
    # The option still wins over the setting.
    again = runner.invoke(
        app,
        ["generate", photo, "--style", "minimal", "--out", str(out), "--variations", "1"],
    )
    assert again.exit_code == 0, again.output
    assert len(json.loads((out / "report.json").read_text())["variations"]) == 1


def without_credentials(png: bytes) -> bytes:
    """The PNG less its XMP (iTXt) and Content Credentials (caBX) chunks."""
    kept, at = [png[:8]], 8
    while at < len(png):
        end = at + 12 + int.from_bytes(png[at : at + 4], "big")
        if png[at + 4 : at + 8] not in (b"iTXt", b"caBX"):
            kept.append(png[at:end])
        at = end
    return b"".join(kept)


def test_generate_writes_the_same_png_as_the_service(settings: Settings, tmp_path: Path) -> None:
    from headshots.imaging.codecs import decode_image, encode_png

    out = tmp_path / "out"
    photo = str(FIXTURES / "obama.jpg")
    result = runner.invoke(
        app,
        ["generate", photo, "--style", "corporate", "--out", str(out), "--variations", "1"],
    )
    assert result.exit_code == 0, result.output
    written = (out / "corporate-1.png").read_bytes()
    assert b"caBX" in written  # signed, as every headshot handed out is
    # The service's PNG of the same pixels, before its credentials are added.
    assert without_credentials(written) == encode_png(decode_image(written))


def test_generate_reports_a_failed_variation_and_keeps_the_others(
    settings: Settings, tmp_path: Path
) -> None:
    from tests.support import InstantEngine

    InstantEngine.reset()
    InstantEngine.fail_once = {"corporate"}
    out = tmp_path / "out"
    photo = str(FIXTURES / "obama.jpg")
    try:
        result = runner.invoke(
            app,
            [
                *("generate", photo, "--style", "corporate", "--engine", "instant"),
                *("--out", str(out), "--variations", "2", "--seed", "3"),
            ],
        )
    finally:
        InstantEngine.reset()
    assert result.exit_code == 0, result.output
    assert "1 variations failed; see report.json" in result.output
    failed, done = json.loads((out / "report.json").read_text())["variations"]
    assert failed["status"] == "failed" and "file" not in failed
    assert (failed["seed"], failed["code"]) == (3, "test")
    assert failed["reason"] == "The test engine refused this one."
    assert (done["status"], done["file"], done["seed"]) == ("done", "corporate-2.png", 4)
    assert sorted(p.name for p in out.glob("*.png")) == ["corporate-2.png"]


def test_models_lists_every_hosted_model_with_its_seed_and_prices(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headshots.config import get_settings
    from headshots.engines.replicate.models import MODELS

    monkeypatch.setenv("HEADSHOTS_REPLICATE_MODEL", "google/nano-banana")
    monkeypatch.setenv("HEADSHOTS_REPLICATE_COST_USD", '{"google/nano-banana": 0.05}')
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["models"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "24 headshots" in lines[0]  # the executive tier: 6 styles x 4
    for name in MODELS:
        assert name in result.output
    (banana,) = [line for line in lines if "google/nano-banana " in line]
    # The operator's price, times the executive order's 24 headshots.
    assert "(configured)" in banana and "$0.0500" in banana and "$1.20" in banana
    assert "none: not reproducible" in banana
    (kontext,) = [line for line in lines if "flux-kontext-pro" in line]
    assert "input_image" in kontext and "$0.0400" in kontext and "$0.96" in kontext


@pytest.mark.parametrize("model", sorted(HOSTED_MODELS))
def test_generate_drives_each_hosted_model_and_reports_its_seeds(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model: str
) -> None:
    from headshots.config import get_settings
    from tests.fakes.replicate_server import TOKEN, FakeReplicate

    # The fake refuses (422) any input the model's schema snapshot would.
    fake = FakeReplicate().start()
    monkeypatch.setenv("REPLICATE_API_TOKEN", TOKEN)
    monkeypatch.setenv("REPLICATE_BASE_URL", fake.url)
    monkeypatch.setenv("HEADSHOTS_REPLICATE_MODEL", model)
    # Small images: every model of the table in seconds.
    monkeypatch.setenv("HEADSHOTS_OUTPUT_WIDTH", "512")
    monkeypatch.setenv("HEADSHOTS_OUTPUT_HEIGHT", "640")
    get_settings.cache_clear()
    try:
        result = runner.invoke(
            app,
            [
                "generate",
                str(FIXTURES / "obama.jpg"),
                "--style",
                "corporate",
                "--engine",
                "replicate",
                "--variations",
                "2",
                "--seed",
                "5",
                "--out",
                str(tmp_path),
            ],
        )
    finally:
        get_settings.cache_clear()
        fake.stop()
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert [v["status"] for v in report["variations"]] == ["done", "done"]
    assert all(create.path.endswith(f"/{model}/predictions") for create in fake.creates())
    assert len(fake.creates()) == 2
    with Image.open(tmp_path / "corporate-1.png") as made:
        assert made.size == (512, 640)
    if HOSTED_MODELS[model].seeded:
        assert [v["seed"] for v in report["variations"]] == [5, 6]
    else:  # a model without a seed: none claimed, and not reproducible
        assert [v["seed"] for v in report["variations"]] == [None, None]
        assert all(v["details"]["reproducible"] is False for v in report["variations"])
