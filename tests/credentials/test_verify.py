"""`headshots verify` and `headshots generate`: credentials from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headshots.cli import app
from headshots.config import Settings
from headshots.credentials.manifest import COMPOSITE_SYNTHETIC

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One studio headshot written by `headshots generate`, for real."""
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
    assert verdict["digital_source_type"] == COMPOSITE_SYNTHETIC
    assert verdict["signer"] == "headshots development (not trusted)"
    assert b"grace_hopper" not in made.read_bytes()


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
