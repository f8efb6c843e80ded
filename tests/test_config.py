"""Settings as an operator writes them: environment variables, some left empty."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import AliasChoices

from headshots.config import Settings
from headshots.engines.base import default_engine_name


def _variables() -> list[str]:
    """Every environment variable a setting is read from."""
    names: list[str] = []
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.extend(str(choice) for choice in alias.choices)
        else:
            names.append(f"HEADSHOTS_{field.upper()}")
    return names


def test_every_setting_left_empty_takes_its_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A compose file or an env template often lists every variable, empty:
    # HEADSHOTS_FLUX_WEIGHTS_DIR= once became "." and turned flux-local on.
    monkeypatch.chdir(tmp_path)
    names = _variables()
    assert {"REPLICATE_API_TOKEN", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"} <= set(names)
    assert "HEADSHOTS_FLUX_WEIGHTS_DIR" in names
    for name in names:
        monkeypatch.delenv(name, raising=False)
    defaults = Settings()
    for name in names:
        monkeypatch.setenv(name, "")
    empty = Settings()
    assert empty.model_dump() == defaults.model_dump()
    assert empty.flux_weights_dir is None
    assert default_engine_name(empty) == "studio"


def test_a_setting_given_a_value_still_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADSHOTS_FLUX_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.delenv("HEADSHOTS_ENGINE", raising=False)
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    monkeypatch.delenv("HEADSHOTS_REPLICATE_API_TOKEN", raising=False)
    assert default_engine_name(Settings()) == "flux-local"


@pytest.mark.parametrize(
    ("cents", "currency", "written"),
    [
        (1900, "usd", "$19"),
        (1950, "usd", "$19.50"),
        (190000, "USD", "$1,900"),
        (900, "eur", "€9"),
        (1900, "gbp", "£19"),
        (1900, "jpy", "¥1,900"),
        (2500, "chf", "25 CHF"),
    ],
)
def test_a_price_is_written_one_way_everywhere(cents: int, currency: str, written: str) -> None:
    from headshots.tiers import Tier, format_price

    assert format_price(cents, currency) == written
    assert Tier("t", "T", cents, 1, currency.lower()).price == written
