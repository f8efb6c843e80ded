"""The one place that picks the payment provider from settings."""

from __future__ import annotations

import hashlib
import hmac

from headshots.config import Settings
from headshots.errors import ConfigurationError
from headshots.payments.base import Payments

PROVIDERS = ("local", "stripe")
LOCAL_KEY_LABEL = b"headshots/local-payments/v1"


def payments_name(settings: Settings) -> str:
    """``HEADSHOTS_PAYMENTS`` if set; otherwise stripe when a Stripe key is configured."""
    if settings.payments:
        return settings.payments.strip().lower()
    return "stripe" if settings.stripe_api_key is not None else "local"


def payments_from_settings(settings: Settings) -> Payments:
    """The configured provider, checked: a Stripe set-up without a webhook secret fails here."""
    name = payments_name(settings)
    # Imported on demand: the embedded mode never loads the Stripe SDK.
    if name == "stripe":
        from headshots.payments.stripe import StripePayments

        return StripePayments(settings)
    if name == "local":
        from headshots.payments.local import LocalPayments

        return LocalPayments(local_signing_key(settings))
    raise ConfigurationError(
        f"HEADSHOTS_PAYMENTS must be one of {', '.join(PROVIDERS)}, not {settings.payments!r}."
    )


def local_signing_key(settings: Settings) -> bytes:
    """The test checkout's signing key, derived from the master key.

    A separate key for a separate purpose: the label keeps it from ever
    equalling a key used for encryption, and knowing it reveals nothing of
    the master key.
    """
    from headshots.storage.keys import load_master_key

    return hmac.new(load_master_key(settings), LOCAL_KEY_LABEL, hashlib.sha256).digest()
