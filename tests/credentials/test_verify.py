"""`headshots verify` and `headshots generate`: credentials from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headshots.cli import app
from headshots.config import Settings
from headshots.credentials.manifest import ALGORITHMICALLY_ENHANCED, COMPOSITE, IPTC

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Studio headshots written by `headshots generate`, for real: corporate
    (a painted backdrop) and startup (the photo's own background, defocused)."""
    out = tmp_path_factory.mktemp("out")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HEADSHOTS_DATA_DIR", str(out / "data"))
        from headshots.config import get_settings

        get_settings.cache_clear()
        result = CliRunner().invoke(
            app,
            [
                "generate",
                str(FIXTURES / "grace_hopper.jpg"),
                "--style",
                "corporate",
                "--style",
                "startup",
                "--engine",
                "studio",
                "--variations",
                "1",
                "--seed",
                "7",
                "--out",
                str(out),
            ],
        )
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return out / "corporate-1.png"


def test_generate_signs_its_outputs_and_verify_reads_them(made: Path, settings: Settings) -> None:
    result = CliRunner().invoke(app, ["verify", str(made), "--json"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.output)
    assert verdict["has_credentials"] and verdict["valid"]
    assert verdict["trusted"] is False  # a development chain
    assert verdict["engine"] == "studio" and verdict["model"] is None
    assert verdict["style"] == "corporate"
    assert verdict["digital_source_type"] == COMPOSITE
    assert verdict["signer"] == "headshots development (not trusted)"
    assert b"grace_hopper" not in made.read_bytes()


@pytest.mark.parametrize(
    ("style", "source_type", "backdrop"),
    [
        ("corporate", COMPOSITE, "c2pa.edited"),
        ("startup", ALGORITHMICALLY_ENHANCED, "c2pa.filtered"),
    ],
)
def test_a_studio_headshot_never_claims_generative_ai(
    made: Path, settings: Settings, style: str, source_type: str, backdrop: str
) -> None:
    # IPTC's compositeSynthetic and compositeWithTrainedAlgorithmicMedia both
    # say generative AI made part of the image; the studio engine uses none.
    image = made.parent / f"{style}-1.png"
    result = CliRunner().invoke(app, ["verify", str(image), "--json"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.output)
    assert verdict["valid"] and verdict["style"] == style
    assert verdict["digital_source_type"] == source_type
    assert verdict["actions"] == [
        "c2pa.created",
        "c2pa.cropped",
        "c2pa.color_adjustments",
        backdrop,
    ]
    data = image.read_bytes()
    # The XMP marking for readers without C2PA says the same.
    assert f"<Iptc4xmpExt:DigitalSourceType>{source_type}<".encode() in data
    for claim in ("compositeSynthetic", "trainedAlgorithmicMedia", "compositeWithTrained"):
        assert (IPTC + claim).encode() not in data, claim


def test_verify_trusts_a_chain_it_is_given(made: Path, settings: Settings) -> None:
    chain = made.parent / "data" / "c2pa-development" / "chain.pem"
    result = CliRunner().invoke(app, ["verify", str(made), "--trust", str(chain)])
    assert result.exit_code == 0, result.output
    assert "certificate trusted" in result.output
    assert "valid" in result.output and "engine:      studio" in result.output


def test_one_changed_pixel_byte_is_reported_invalid(
    made: Path, tmp_path: Path, settings: Settings
) -> None:
    data = bytearray(made.read_bytes())
    data[data.index(b"IDAT") + 200] ^= 0x01
    tampered = tmp_path / "tampered.png"
    tampered.write_bytes(bytes(data))
    result = CliRunner().invoke(app, ["verify", str(tampered), "--json"])
    assert result.exit_code == 1
    verdict = json.loads(result.output)
    assert verdict["valid"] is False
    assert "assertion.dataHash.mismatch" in verdict["failures"]


def test_an_image_without_credentials_exits_non_zero(settings: Settings) -> None:
    result = CliRunner().invoke(app, ["verify", str(FIXTURES / "astronaut.png")])
    assert result.exit_code == 1
    assert "no Content Credentials" in result.output


def test_a_file_that_is_no_image_is_refused_in_one_line(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    result = CliRunner().invoke(app, ["verify", str(path)])
    assert result.exit_code == 1
    assert "not a PNG or JPEG" in result.output
