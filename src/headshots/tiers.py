"""Tiers: what an order costs and how many styles it may have.

The defaults can be replaced with ``HEADSHOTS_TIERS``, a JSON object such as
``{"starter": {"title": "Starter", "price_cents": 900, "styles": 1}}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from headshots.errors import ConfigurationError, HeadshotsError
from headshots.styles import STYLE_IDS, get_style


@dataclass(frozen=True)
class Tier:
    id: str
    title: str
    price_cents: int
    styles: int
    currency: str = "usd"

    @property
    def price(self) -> str:
        return format_price(self.price_cents, self.currency)


# Currencies written with a sign before the amount; any other is written
# after it by its code ("19 CHF").
_SIGNS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$", "nzd": "NZ$"}
# Currencies without minor units (Stripe's "zero-decimal" list, the common ones).
_WHOLE = {"jpy", "krw", "vnd", "clp", "isk", "huf"}


def format_price(cents: int, currency: str) -> str:
    """One way of writing a price everywhere: "$19", "$19.50", "€9", "1,900 JPY" as "¥1,900".

    ``cents`` is in the currency's smallest unit, as Stripe counts it.
    """
    code = currency.lower()
    amount = cents if code in _WHOLE else cents / 100
    number = f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}"
    sign = _SIGNS.get(code)
    return f"{sign}{number}" if sign else f"{number} {code.upper()}"


DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("starter", "Starter", 900, 1),
    Tier("professional", "Professional", 1900, 3),
    Tier("executive", "Executive", 2900, len(STYLE_IDS)),
)


class OrderChoiceError(HeadshotsError):
    status_code = 422
    code = "invalid_choice"
    message = "That choice of tier and styles is not possible."


def parse_tiers(raw: str | None) -> tuple[Tier, ...]:
    if not raw:
        return DEFAULT_TIERS
    try:
        data = json.loads(raw)
        tiers = tuple(
            Tier(
                id=str(tier_id),
                title=str(spec.get("title", str(tier_id).title())),
                price_cents=int(spec["price_cents"]),
                styles=int(spec["styles"]),
                currency=str(spec.get("currency", "usd")).lower(),
            )
            for tier_id, spec in data.items()
        )
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ConfigurationError(
            "HEADSHOTS_TIERS must be a JSON object of tiers, each with price_cents and styles."
        ) from error
    for tier in tiers:
        if not (50 <= tier.price_cents <= 1_000_000 and 1 <= tier.styles <= len(STYLE_IDS)):
            raise ConfigurationError(
                f"Tier {tier.id!r}: the price must be 50..1000000 cents and styles "
                f"1..{len(STYLE_IDS)}."
            )
    if not tiers:
        raise ConfigurationError("HEADSHOTS_TIERS must name at least one tier.")
    return tiers


def choose(tiers: tuple[Tier, ...], tier_id: str, style_ids: list[str]) -> tuple[Tier, list[str]]:
    """The tier and the styles of a new order, or a 422 that says what is wrong."""
    by_id = {tier.id: tier for tier in tiers}
    tier = by_id.get(tier_id)
    if tier is None:
        raise OrderChoiceError(
            f"There is no tier called {tier_id[:40]!r}. Choose from: {', '.join(by_id)}."
        )
    if not style_ids:
        raise OrderChoiceError("Choose at least one style.")
    for style_id in style_ids:
        get_style(style_id)  # raises a 422 for an unknown id
    if len(set(style_ids)) != len(style_ids):
        raise OrderChoiceError("Each style can be chosen only once.")
    if len(style_ids) > tier.styles:
        plural = "style" if tier.styles == 1 else "styles"
        raise OrderChoiceError(
            f"The {tier.title} tier includes {tier.styles} {plural}; you chose "
            f"{len(style_ids)}. Choose fewer styles or a larger tier."
        )
    return tier, style_ids
