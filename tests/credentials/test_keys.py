"""Signing keys: the operator's PEM files, or a development chain; refused when missing."""

from __future__ import annotations

import base64
import logging
import secrets
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headshots.cli import app
from headshots.config import Settings, get_settings
from headshots.credentials.keys import load_credentials, write_development_chain
from headshots.errors import ConfigurationError


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", **values)  # type: ignore[arg-type]


def test_development_mode_makes_a_private_chain_once_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        first = load_credentials(settings(tmp_path, dev_mode=True))
        again = load_credentials(settings(tmp_path, dev_mode=True))
    assert first is not None and again is not None
    assert first.development and first.chain_pem == again.chain_pem
    key = tmp_path / "data" / "c2pa-development" / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    warnings = [
        r.getMessage()
        for r in caplog.records
        if "development Content Credentials" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "PRIVATE KEY" not in caplog.text


def test_production_without_a_certificate_is_refused_naming_article_50(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="Article 50"):
        load_credentials(settings(tmp_path))
    assert load_credentials(settings(tmp_path, c2pa=False)) is None


def test_the_operators_chain_is_used_and_a_wrong_key_is_refused_without_quoting_it(
    tmp_path: Path,
) -> None:
    chain, key = write_development_chain(tmp_path / "operator")
    loaded = load_credentials(settings(tmp_path, c2pa_cert=chain, c2pa_key=key))
    assert loaded is not None and not loaded.development
    assert "PRIVATE" not in repr(loaded)

    _, other_key = write_development_chain(tmp_path / "other")
    with pytest.raises(ConfigurationError) as refused:
        load_credentials(settings(tmp_path, c2pa_cert=chain, c2pa_key=other_key))
    assert "does not belong" in refused.value.detail
    assert other_key.read_text().splitlines()[1] not in refused.value.detail

    with pytest.raises(ConfigurationError, match="both"):
        load_credentials(settings(tmp_path, c2pa_cert=chain))


def test_serve_refuses_to_start_in_production_without_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADSHOTS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(
        "HEADSHOTS_MASTER_KEY", base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    )
    for name in (
        "HEADSHOTS_DEV_MODE",
        "HEADSHOTS_C2PA",
        "HEADSHOTS_C2PA_CERT",
        "HEADSHOTS_C2PA_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "EU AI Act (Article 50)" in result.output
    assert "HEADSHOTS_C2PA=off" in result.output
