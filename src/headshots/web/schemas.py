"""What the JSON API answers: one Pydantic model per answer.

The routes declare these as their response models, so ``/openapi.json`` and
``/docs`` describe every field a client reads, and a client generated from
the schema (tests/web/test_schema.py makes one) can follow a whole order.
The pages show the same order through :func:`order_json`, so the progress
page and the API can never describe an order differently.

Field names and values are a published contract: an answer's keys are kept
as they were when the API returned hand-built dicts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from headshots.imaging.identity import LOOKS_DIFFERENT
from headshots.orders import models
from headshots.orders.models import OrderStatus, VariationStatus

# Where an order's images are fetched: the API's own addresses, or the
# pages' (web.pages), which open with the order's cookie.
API_ORDERS = "/api/orders"

# A measurement as it was taken: whole pixels stay whole on the wire (a
# float field would send 120 as 120.0); to a client both are numbers.
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]


class Error(BaseModel):
    """Every refusal: a stable code for programs and a sentence for people."""

    error: str = Field(description="Stable code, e.g. `not_found`, `payment_required`.")
    detail: str = Field(description="What happened and what to do, as a sentence.")


class Failure(BaseModel):
    code: str | None = Field(description="Stable code the engine gave, e.g. `timeout`.")
    reason: str | None = Field(description="Why this variation could not be made.")


class Identity(BaseModel):
    """How far the headshot's face is from the selfie's."""

    distance: float | None = Field(
        description="Face descriptor distance to the selfie; lower is closer, None if unscored."
    )
    flag: str | None = Field(
        description="Set when the face should be looked at again: `different_person`, "
        "`no_face` or `several_faces`."
    )
    message: str | None = Field(description="What the flag means, for a person.")
    rerolling: bool = Field(
        description="The face drifted and a new try is being made; its image replaces this "
        "preview when it lands."
    )


class Variation(BaseModel):
    """One headshot of the order: a style and a seed."""

    id: str
    style: str = Field(description="The style's id, e.g. `corporate`.")
    index: int = Field(description="Its place among the style's variations, from 1.")
    seed: int | None = Field(
        description="The seed that made it; null for a model without seeds, whose images "
        "cannot be made again the same way."
    )
    status: VariationStatus = Field(
        description="`pending`, `running`, `finishing` (the preview can be shown; the identity "
        "check and the final PNG are under way), then `done` or `failed`."
    )
    failure: Failure | None = Field(description="Set only when the status is `failed`.")
    identity: Identity
    seconds: float | None = Field(description="How long the engine took for this image.")
    preview_url: str | None = Field(description="The watermarked JPEG, once it can be shown.")
    download_url: str | None = Field(description="The clean PNG, once shown and paid for.")
    # Redo and favourites (orders.redo, orders.favourites).
    favourite: bool = Field(description="The person marked it; `?favourites=1` zips only these.")
    redoing: bool = Field(
        description="It is being made again with a new seed: the image made before stays at "
        "`preview_url` until the new one replaces it."
    )
    redo_failure: str | None = Field(
        description="Why its last redo could not be made; it kept its image and the order its redo."
    )


class Progress(BaseModel):
    """How many variations are in each state (tests/web/test_schema.py holds it to them)."""

    pending: int
    running: int
    finishing: int
    done: int
    failed: int


class PreflightFinding(BaseModel):
    """Something the preflight noticed in the selfie that did not stop the order."""

    code: str = Field(description="Stable code, e.g. `low_resolution`, `too_dark`.")
    severity: Literal["error", "warning"]
    value: Number = Field(description="What was measured, in `unit`.")
    limit: Number = Field(description="The measure's limit, in `unit`.")
    unit: str
    message: str = Field(description="What it means for the headshots, as a sentence.")


class Order(BaseModel):
    """An order: its choice, price, state and every variation."""

    id: str
    status: OrderStatus = Field(
        description="`queued` while variations are made, `ready` when every one is finished "
        "(some may have failed); `expired` or `deleted` once shredded."
    )
    tier: str
    styles: list[str] = Field(description="The chosen styles' ids, in the order chosen.")
    engine: str = Field(description="The engine that makes this order's headshots.")
    backdrop: str | None = Field(
        description="The backdrop chosen for every style (a named colour such as `navy`, or "
        "`#RRGGBB`); null: each style's own."
    )
    amount_cents: int
    currency: str
    paid: bool
    created_at: datetime
    expires_at: datetime = Field(description="When everything of the order is destroyed.")
    finished_at: datetime | None
    progress: Progress
    preflight: list[PreflightFinding]
    variations: list[Variation]
    zip_url: str | None = Field(description="Every clean PNG in one zip, once paid for.")
    redos_left: int = Field(
        description="How many more variations may be made again (`POST .../variations/{id}/redo`)."
    )


class NewOrder(Order):
    """The order just made, with the token that opens it."""

    token: str = Field(
        description="Send as `Authorization: Bearer <token>` on every call for this order. "
        "Shown only in this answer."
    )


class Redo(BaseModel):
    """A variation being made again: the answer to `POST .../redo` (202)."""

    variation: Variation
    redos_left: int = Field(description="How many more variations the order may have made again.")


class Checkout(BaseModel):
    checkout_url: str = Field(description="Where the person pays for the order.")
    test_mode: bool = Field(description="True when no money is charged (a test payment).")


class Style(BaseModel):
    id: str
    title: str
    description: str = Field(description="What the style gives, as the engine makes it.")


class Styles(BaseModel):
    """The styles a new order may pick, as the configured engine makes them."""

    engine: str
    generative: bool = Field(description="Whether the engine generates new images.")
    changes_clothes: bool = Field(description="Whether the engine dresses the person anew.")
    styles: list[Style]


class PaymentReceipt(BaseModel):
    """A payment provider's notification, received."""

    received: Literal[True]
    ignored: bool | None = Field(None, description="The event was not one this service acts on.")
    duplicate: bool | None = Field(None, description="The event had been applied before.")
    unlocked: bool | None = Field(None, description="This event unlocked the order's downloads.")


WebhookResult = Literal["accepted", "duplicate", "rejected", "not_configured", "unavailable"]


class WebhookAnswer(BaseModel):
    """The answer to a Replicate webhook: what became of it, and a sentence."""

    status: WebhookResult
    detail: str


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(
        description="Each part (database, queue, storage, engine): `ok`, or what is wrong."
    )
    model: dict[str, Any] | None = Field(
        None, description="The local engine's model and its licence, when it has one."
    )


# --- teams (orders/teams): the organiser's answers never hold an image or a member's token


class NewTeamRequest(BaseModel):
    """A team to create: its name, seats, and the look every member gets."""

    name: str = Field(min_length=1, max_length=80, description="Shown to the members.")
    seats: int = Field(ge=1, le=500, description="How many members may join.")
    styles: list[str] = Field(
        default_factory=list, description="The styles every member gets; or give `tier`."
    )
    tier: str | None = Field(
        None, description="The tier whose price a seat costs; without `styles`, its first styles."
    )
    backdrop: str | None = Field(
        None, description="A named backdrop colour or `#RRGGBB`, as in a person's order."
    )
    expires_in_days: int = Field(7, ge=1, le=14, description="When the team and its picks end.")


class SeatRevoke(BaseModel):
    count: int = Field(1, ge=1, le=500, description="Unused seats to take back.")


class TeamPick(BaseModel):
    id: str
    style: str
    index: int
    kept_until: datetime = Field(description="When the team's copy is destroyed at the latest.")


class TeamMember(BaseModel):
    """One used seat, as the organiser sees it: no image, no token."""

    id: str
    display_name: str | None = Field(description="The name the member chose to give, if any.")
    status: Literal["uploaded", "ready", "picked", "gone"] = Field(
        description="`uploaded` while their headshots are made, `ready` when made, `picked` once "
        "they gave the team a picture, `gone` when their order ended without a pick."
    )
    joined_at: datetime
    order_expires_at: datetime | None = Field(
        description="When the member's own order (selfie, other images) is destroyed."
    )
    picks: list[TeamPick]


class Team(BaseModel):
    """A team as its organiser sees it."""

    id: str
    name: str
    status: Literal["unpaid", "open", "full", "ended", "expired"]
    paid: bool
    seats: int
    used: int = Field(description="Seats members have used (each counted once).")
    open: int = Field(description="Seats still free: members invited who have not joined.")
    revoked: int = Field(description="Seats taken back after payment (to be refunded).")
    seat_price_cents: int
    amount_cents: int
    currency: str
    tier: str
    styles: list[str]
    backdrop: str | None
    created_at: datetime
    expires_at: datetime = Field(description="When the team ends and every pick is destroyed.")
    ended_at: datetime | None
    members: list[TeamMember]
    zip_url: str | None = Field(description="Every pick in one zip, while the team lasts.")


class NewTeam(Team):
    """The team just made, with its two secrets."""

    admin_token: str = Field(
        description="Send as `Authorization: Bearer <admin token>` on every team call. "
        "Shown only in this answer."
    )
    invite_url: str = Field(description="The link to give members: `/t/CODE`.")


class Pick(BaseModel):
    """A headshot given to the team's organiser."""

    id: str
    variation_id: str
    team: str = Field(description="The team's name.")
    kept_until: datetime
    detail: str = Field(description="What the organiser receives and for how long.")


class MemberTeam(BaseModel):
    """The team a member's order belongs to, as the member sees it."""

    name: str
    styles: list[str]
    backdrop: str | None
    open: bool = Field(description="Whether the organiser can still receive pictures.")
    picked: list[str] = Field(description="The ids of the variations given to the team.")


# What each refusal means on the routes that declare it (``responses=``).
_REFUSALS = {
    400: "The request was refused (a webhook that does not verify, a malformed id).",
    401: "No admin token was sent: `Authorization: Bearer <admin token>`.",
    402: "The order, or the team whose invite it uses, is not paid for yet.",
    404: "No such order, or the token does not open it: the two are not told apart.",
    409: "Not ready yet, already paid, no seat left in the team, no redo left, or no "
    "favourite marked.",
    410: "The team has ended or expired; its invite and its pictures are gone.",
    413: "The upload or its pixels are larger than this service takes.",
    422: "The request or the photo was refused; `detail` says why.",
    429: "Too many uploads from this address; `Retry-After` says when to try again.",
    502: "The payment provider could not be reached; try again in a moment.",
    503: "A part of the service is unavailable; try again later.",
    507: "The service is out of storage space; try again later.",
}


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each status with the Error body and its meaning."""
    return {status: {"model": Error, "description": _REFUSALS[status]} for status in statuses}


def file(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry of a route that answers a file, not JSON."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {200: {"description": description, "content": {media_type: binary}}}


def variation_of(order: models.Order, variation: models.Variation, orders: str) -> Variation:
    base = f"{orders}/{order.id}/variations/{variation.id}"
    showable = variation.showable
    flag = variation.identity_flag
    failed = variation.status == VariationStatus.FAILED
    return Variation(
        id=variation.id,
        style=variation.style,
        index=variation.index,
        # A model without a seed cannot remake the image: no seed to show.
        seed=None if variation.details.get("reproducible") is False else variation.seed,
        status=VariationStatus(variation.status),
        failure=(
            Failure(code=variation.failure_code, reason=variation.failure_reason)
            if failed
            else None
        ),
        identity=Identity(
            distance=variation.identity_distance,
            flag=flag,
            message=LOOKS_DIFFERENT if flag else None,
            rerolling=bool(variation.details.get("rerolling")),
        ),
        seconds=variation.seconds,
        preview_url=f"{base}/preview" if showable else None,
        download_url=f"{base}/download" if showable and order.is_paid else None,
        favourite=variation.favourite,
        redoing=variation.redo_seed is not None,
        redo_failure=variation.details.get("redo_failure"),
    )


def order_of(order: models.Order, orders: str = API_ORDERS) -> Order:
    """The order's answer; ``orders`` is where its images are fetched."""
    counts = dict.fromkeys(Progress.model_fields, 0)
    for variation in order.variations:
        counts[variation.status] += 1
    return Order(
        id=order.id,
        status=OrderStatus(order.status),
        tier=order.tier,
        styles=order.styles,
        engine=order.engine,
        backdrop=order.backdrop,
        amount_cents=order.amount_cents,
        currency=order.currency,
        paid=order.is_paid,
        created_at=order.created_at,
        expires_at=order.expires_at,
        finished_at=order.finished_at,
        progress=Progress(**counts),
        preflight=[PreflightFinding(**finding) for finding in order.preflight or []],
        variations=[variation_of(order, v, orders) for v in order.variations],
        zip_url=f"{orders}/{order.id}/download.zip" if order.is_paid else None,
        redos_left=order.redos_left,
    )


def order_json(order: models.Order, orders: str = API_ORDERS) -> dict[str, Any]:
    """The order's answer as JSON-ready data, for pages and the live event stream."""
    return order_of(order, orders).model_dump(mode="json")
