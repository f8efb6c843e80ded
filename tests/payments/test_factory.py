"""Which payment provider the settings pick, and which settings are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from headshots.config import Settings
from headshots.errors import ConfigurationError
from headshots.payments.base import WebhookRejected
from headshots.payments.factory import payments_from_settings
from headshots.payments.local import LocalPayments
from tests.fakes.stripe_server import API_KEY, WEBHOOK_SECRET


@pytest.fixture(autouse=True)
def no_host_stripe(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "HEADSHOTS_PAYMENTS"):
        monkeypatch.delenv(name, raising=False)


def settings_with(tmp_path: Path, **values: Any) -> Settings:
    # The local provider derives its key from the master key: give it one.
    values.setdefault("master_key", "A" * 43 + "=")
    return Settings(data_dir=tmp_path / "data", dev_mode=True, **values)


def test_a_stripe_key_picks_stripe(tmp_path: Path) -> None:
    payments = payments_from_settings(
        settings_with(tmp_path, STRIPE_API_KEY=API_KEY, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    )
    assert payments.name == "stripe"
    assert payments.test_mode is True


def test_no_stripe_key_picks_the_local_test_checkout(tmp_path: Path) -> None:
    payments = payments_from_settings(settings_with(tmp_path))
    assert payments.name == "local"
    assert payments.test_mode is True


def test_the_local_checkout_is_verified_by_every_process_sharing_the_master_key(
    tmp_path: Path,
) -> None:
    # The web process signs the test page's confirmation; any replica must accept it.
    web = payments_from_settings(settings_with(tmp_path))
    replica = payments_from_settings(settings_with(tmp_path))
    other = payments_from_settings(settings_with(tmp_path, master_key="B" * 43 + "="))
    assert isinstance(web, LocalPayments)
    body, headers = web.confirmation(
        session_id="lcs_1", order_id="ord_1", amount_cents=900, currency="usd"
    )
    event = replica.parse_webhook(body, headers)
    assert event is not None
    assert (event.order_id, event.outcome) == ("ord_1", "paid")
    with pytest.raises(WebhookRejected):
        other.parse_webhook(body, headers)


def test_local_can_be_chosen_even_with_a_stripe_key(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, payments="local", STRIPE_API_KEY=API_KEY)
    assert payments_from_settings(settings).name == "local"


@pytest.mark.parametrize(
    ("values", "says"),
    [
        # Never Stripe without verified webhooks: nothing could unlock an order.
        ({"STRIPE_API_KEY": API_KEY}, "STRIPE_WEBHOOK_SECRET"),
        ({"payments": "stripe", "STRIPE_API_KEY": API_KEY}, "STRIPE_WEBHOOK_SECRET"),
        ({"payments": "stripe", "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}, "STRIPE_API_KEY"),
        ({"payments": "paypal"}, "HEADSHOTS_PAYMENTS"),
    ],
)
def test_settings_that_cannot_take_payments_are_refused(
    tmp_path: Path, values: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigurationError, match=says):
        payments_from_settings(settings_with(tmp_path, **values))
