"""The pages a person uses: landing, upload, choose, progress, previews, checkout.

Server-rendered with Jinja2; every form works without JavaScript, and
``static/app.js`` adds drag and drop, live progress and an image viewer. An
order's pages and images open with its token, kept in an HttpOnly cookie
named after the order; a draft (a checked selfie before the choice) has its
own cookie. Every form carries a CSRF token.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from headshots.backdrops import NAMED, hex_of, parse_backdrop, with_backdrop
from headshots.config import Settings
from headshots.engines.base import (
    declared,
    default_engine_name,
    describe_style,
)
from headshots.errors import HeadshotsError
from headshots.orders import checkout, drafts, intake, service
from headshots.orders.db import transaction
from headshots.orders.models import SHOWABLE, Order, OrderStatus, utcnow
from headshots.orders.teams.models import Team
from headshots.payments.local import LocalPayments
from headshots.runtime import Runtime
from headshots.styles import STYLES, get_style
from headshots.tiers import Tier, format_price
from headshots.web.deps import backdrop_asked, base_url, draft_cookie, order_cookie, runtime_of
from headshots.web.multipart import FormError, read_form, read_page_form
from headshots.web.responses import (
    NO_STORE,
    ORDERS,
    download_response,
    order_response,
    preview_response,
    shape_asked,
    shapes_asked,
    zip_response,
)
from headshots.web.samples import LANDING, Samples
from headshots.web.schemas import order_json
from headshots.web.security import (
    CSRF_FIELD,
    Csrf,
    client_address,
    csrf_of,
    limiter_of,
    set_cookie,
)

log = logging.getLogger(__name__)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)


def samples_shown(request: Request) -> dict[str, Path]:
    """The samples of each style, when the configured engine is the one that made them."""
    samples: Samples = request.app.state.samples
    return samples.for_engine(default_engine_name(runtime_of(request).settings))


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    runtime = runtime_of(request)
    settings = runtime.settings
    base: dict[str, Any] = {
        "csrf": csrf_of(request).token(request),
        "csrf_field": CSRF_FIELD,
        "retention_hours": _hours(settings.retention_hours),
        "test_payments": runtime.payments.test_mode,
        "max_upload_mb": settings.max_upload_bytes // (1024 * 1024),
    }
    response = templates.TemplateResponse(
        request, name, {**base, **(context or {})}, status_code=status_code, headers=headers
    )
    Csrf.attach(request, response, settings)
    return response


def error_page(
    request: Request, error: HeadshotsError, *, title: str | None = None
) -> HTMLResponse:
    titles = {404: "Nothing here", 410: "This is gone", 402: "Payment needed", 429: "Slow down"}
    return render(
        request,
        "error.html",
        {"title": title or titles.get(error.status_code, "Something is not right"), "error": error},
        status_code=error.status_code,
        headers=error.headers,
    )


def _hours(hours: float) -> str:
    return f"{hours:g}"


def _tiers_view(tiers: tuple[Tier, ...]) -> list[dict[str, Any]]:
    return [
        {
            "id": tier.id,
            "title": tier.title,
            "price": tier.price,
            "styles": tier.styles,
            "label": "1 style" if tier.styles == 1 else f"{tier.styles} styles",
        }
        for tier in tiers
    ]


def _styles_view(request: Request) -> list[dict[str, Any]]:
    """The style cards for a new order, made by the configured engine."""
    settings = runtime_of(request).settings
    shown = samples_shown(request)
    return [
        {
            "id": style.id,
            "title": style.title,
            "description": describe_style(style, settings),
            "sample": style.id in shown,
        }
        for style in STYLES
    ]


# --- static pages ---------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def landing(request: Request) -> HTMLResponse:
    runtime = runtime_of(request)
    shown = samples_shown(request)
    return render(
        request,
        "landing.html",
        {
            "samples": [get_style(style_id) for style_id in LANDING if style_id in shown],
            "generative": declared(runtime.settings).generative,
            "tiers": _tiers_view(runtime.tiers),
        },
    )


@router.get("/privacy", response_class=HTMLResponse)
def privacy(request: Request) -> HTMLResponse:
    return render(request, "privacy.html")


@router.get("/guide", response_class=HTMLResponse)
def guide(request: Request) -> HTMLResponse:
    from headshots.imaging.preflight import CHECKS

    checks = list(CHECKS.values())
    return render(
        request,
        "guide.html",
        {
            "errors": [c for c in checks if c.severity == "error"],
            "warnings": [c for c in checks if c.severity == "warning"],
        },
    )


@router.get("/samples/{style_id}.jpg")
def sample(request: Request, style_id: str) -> Response:
    path = samples_shown(request).get(style_id)
    if path is None:
        raise service.OrderNotFound("There is no such sample.")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


# --- upload: the selfie and its preflight ------------------------------------------


@router.get("/start", response_class=HTMLResponse)
def start(request: Request) -> HTMLResponse:
    return render(request, "upload.html")


@router.post("/start")
async def upload(request: Request) -> Response:
    runtime = runtime_of(request)
    settings = runtime.settings
    try:
        limiter_of(request).take(client_address(request))
        form = await read_form(
            request, file_fields={"selfie", "selfie_file"}, max_file_bytes=settings.max_upload_bytes
        )
        csrf_of(request).check(request, form.fields.get(CSRF_FIELD, [None])[0])
        # Two pickers: the camera (capture) and the library; either may be used.
        photo = form.files.get("selfie") or form.files.get("selfie_file")
        if not photo:
            raise FormError("Choose a photo of yourself first.")

        created = await run_in_threadpool(intake.draft_from_upload, runtime, photo)
    except HeadshotsError as error:
        return render(
            request,
            "upload.html",
            {"error": error},
            status_code=error.status_code,
            headers=error.headers,
        )
    response = RedirectResponse(f"/drafts/{created.draft.id}", status_code=303)
    set_cookie(
        request,
        response,
        settings,
        f"draft_{created.draft.id}",
        created.token,
        max_age=int(drafts.DRAFT_LIFETIME.total_seconds()),
    )
    return response


@router.get("/drafts/{draft_id}", response_class=HTMLResponse)
def choose_page(request: Request, draft_id: str) -> HTMLResponse:
    runtime = runtime_of(request)
    try:
        with transaction(runtime.sessions) as session:
            draft = drafts.open_draft(session, draft_id, draft_cookie(request, draft_id))
            findings = list(draft.findings)
    except HeadshotsError as error:
        return error_page(request, error)
    return _choose(request, draft_id, findings)


def _choose(
    request: Request,
    draft_id: str,
    findings: list[Any],
    *,
    error: HeadshotsError | None = None,
    chosen_tier: str | None = None,
    chosen_styles: list[str] | None = None,
    chosen_backdrop: str = "style",
) -> HTMLResponse:
    runtime = runtime_of(request)
    tiers = _tiers_view(runtime.tiers)
    default_tier = chosen_tier or (tiers[1]["id"] if len(tiers) > 1 else tiers[0]["id"])
    return render(
        request,
        "choose.html",
        {
            "draft_id": draft_id,
            "findings": findings,
            "tiers": tiers,
            "styles": _styles_view(request),
            "chosen_tier": default_tier,
            "chosen_styles": chosen_styles or [],
            "error": error,
            # The backdrop step shows only where the engine can paint one.
            "backdrops": [
                {"id": name, "title": name.replace("-", " ").capitalize(), "hex": hex_of(rgb)}
                for name, rgb in NAMED.items()
            ]
            if declared(runtime.settings).takes_backdrop_colour
            else [],
            "chosen_backdrop": chosen_backdrop,
        },
        status_code=error.status_code if error else 200,
    )


@router.get("/drafts/{draft_id}/photo")
def draft_photo(request: Request, draft_id: str) -> Response:
    runtime = runtime_of(request)
    with transaction(runtime.sessions) as session:
        draft = drafts.open_draft(session, draft_id, draft_cookie(request, draft_id))
        data = drafts.draft_photo(runtime.blobs, draft)
    return Response(_thumbnail(data), media_type="image/jpeg", headers=NO_STORE)


def _thumbnail(png: bytes) -> bytes:
    # The page shows the selfie small: a thumbnail keeps the page light on a phone.
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png))
    image.thumbnail((400, 400), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


@router.post("/drafts/{draft_id}")
async def choose(request: Request, draft_id: str) -> Response:
    runtime = runtime_of(request)
    settings = runtime.settings
    form = await read_page_form(request)
    tier_id = form.first("tier")
    style_ids = [s for s in form.fields.get("styles", []) if s.strip()]
    # "brand" takes the colour picker's value; any other choice is a name.
    chosen_backdrop = form.first("backdrop") or "style"
    if chosen_backdrop == "brand":
        chosen_backdrop = form.first("brand_colour") or ""
    try:
        csrf_of(request).check(request, form.first(CSRF_FIELD))
        limiter_of(request).take(client_address(request))
        created = await run_in_threadpool(
            intake.order_from_draft,
            runtime,
            draft_id,
            draft_cookie(request, draft_id),
            tier_id=tier_id,
            style_ids=style_ids,
            backdrop=backdrop_asked(chosen_backdrop),
        )
    except drafts.DraftGone as error:
        return error_page(request, error)
    except HeadshotsError as error:
        # Refused (the choice, the CSRF check, the rate limit): the draft
        # stays, and its page shows again with the error.
        try:
            with transaction(runtime.sessions) as session:
                draft = drafts.open_draft(session, draft_id, draft_cookie(request, draft_id))
                findings = list(draft.findings)
        except HeadshotsError as gone:
            return error_page(request, gone)
        return _choose(
            request,
            draft_id,
            findings,
            error=error,
            chosen_tier=tier_id or None,
            chosen_styles=style_ids,
            chosen_backdrop=chosen_backdrop,
        )
    order_id = created.order.id
    response = RedirectResponse(f"/orders/{order_id}", status_code=303)
    expires_in = (created.order.expires_at - utcnow()).total_seconds()
    set_cookie(
        request, response, settings, f"order_{order_id}", created.token, max_age=int(expires_in)
    )
    response.delete_cookie(f"draft_{draft_id}", path="/")
    return response


# --- the order: progress, previews, payment, downloads, deletion ---------------------


def time_left(expires_at: datetime) -> str:
    seconds = max(0, int((expires_at - utcnow()).total_seconds()))
    hours, minutes = seconds // 3600, (seconds % 3600) // 60
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


def _order_view(order: Order, settings: Settings) -> dict[str, Any]:
    body = order_json(order, ORDERS)
    groups: list[dict[str, Any]] = []
    for style_id in order.styles:
        style = get_style(style_id)
        items = [v for v in body["variations"] if v["style"] == style_id]
        # Said of the engine that makes this order, not of today's setting.
        # What this order's style gives, its chosen backdrop included.
        shown = with_backdrop(style, parse_backdrop(order.backdrop))
        description = describe_style(shown, settings, order.engine)
        groups.append({"style": style, "description": description, "variations": items})
    progress = body["progress"]
    finished = progress["finishing"] + progress["done"] + progress["failed"]
    return {
        "order": body,
        "groups": groups,
        "finished": finished,
        "total": len(body["variations"]),
        "time_left": time_left(order.expires_at),
        "ready": order.status == OrderStatus.READY,
        "any_done": progress["finishing"] + progress["done"] > 0,
        "generative": declared(settings, order.engine).generative,
    }


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(request: Request, order_id: str) -> HTMLResponse:
    runtime = runtime_of(request)
    try:
        with transaction(runtime.sessions) as session:
            order = service.open_order(session, order_id, order_cookie(request, order_id))
            view = _order_view(order, runtime.settings)
            tier = next((t for t in runtime.tiers if t.id == order.tier), None)
            membership = _membership(session, order, view)
    except HeadshotsError as error:
        return error_page(request, error)
    confirming = request.query_params.get("paid") == "1" and not view["order"]["paid"]
    cancelled = request.query_params.get("cancelled") == "1" and not view["order"]["paid"]
    return render(
        request,
        "order.html",
        {
            **view,
            "tier": tier,
            "confirming": confirming,
            "cancelled": cancelled,
            "price": format_price(order.amount_cents, order.currency),
            "membership": membership,
            # The way back from any browser: the order's own secret, after the
            # '#', which a browser never sends to a server (so no log holds it).
            "private_link": f"{base_url(request, runtime).rstrip('/')}{ORDERS}/{order_id}/open#"
            f"{order_cookie(request, order_id)}",
        },
        headers=NO_STORE,
    )


@router.get("/orders/{order_id}/open", response_class=HTMLResponse)
def open_link_page(request: Request, order_id: str) -> HTMLResponse:
    """A private link's landing: its script sends the secret after '#' to open_link."""
    return render(request, "open.html", {"order_id": order_id}, headers=NO_STORE)


@router.post("/orders/{order_id}/open")
async def open_link(request: Request, order_id: str) -> Response:
    """Open an order in this browser with its private link's secret: the order's cookie."""
    runtime = runtime_of(request)
    form = await read_page_form(request)
    try:
        csrf_of(request).check(request, form.first(CSRF_FIELD))
        token = form.first("token") or None
        with transaction(runtime.sessions) as session:
            # The same 404 as a missing order for a wrong or revoked link.
            order = service.open_order(session, order_id, token)
            expires_at = order.expires_at
    except HeadshotsError as error:
        return error_page(request, error)
    assert token is not None
    response = RedirectResponse(f"{ORDERS}/{order_id}", status_code=303)
    max_age = int((expires_at - utcnow()).total_seconds())
    set_cookie(request, response, runtime.settings, f"order_{order_id}", token, max_age=max_age)
    return response


def _membership(session: Session, order: Order, view: dict[str, Any]) -> dict[str, Any] | None:
    """A team member's order: the team and which finished images were given to it."""
    from headshots.orders.teams.picks import member_team

    joined = member_team(session, order)
    if joined is None:
        return None
    given = {p.variation_id for p in joined.picks}
    team = joined.team
    return {
        "name": team.name,
        "open": not team.has_ended and team.expires_at > utcnow(),
        "images": [
            {**v, "given": v["id"] in given, "title": get_style(v["style"]).title}
            for v in view["order"]["variations"]
            if v["download_url"]
        ],
    }


# Reading is all a cookie does on these GETs; every change (pay, delete)
# is a form with its CSRF token.


@router.get("/orders/{order_id}/progress")
def order_progress(request: Request, order_id: str) -> Response:
    """The order as JSON: what the page polls when its event stream breaks."""
    runtime = runtime_of(request)
    return order_response(runtime, order_id, order_cookie(request, order_id), ORDERS)


@router.get("/orders/{order_id}/variations/{variation_id}/preview")
def order_preview(request: Request, order_id: str, variation_id: str) -> Response:
    token = order_cookie(request, order_id)
    return preview_response(runtime_of(request), order_id, variation_id, token)


@router.get("/orders/{order_id}/variations/{variation_id}/download")
def order_download(request: Request, order_id: str, variation_id: str) -> Response:
    token = order_cookie(request, order_id)
    shape = shape_asked(request.query_params.get("format"))
    return download_response(runtime_of(request), order_id, variation_id, token, shape)


@router.get("/orders/{order_id}/download.zip")
def order_zip(request: Request, order_id: str, favourites: bool = False) -> Response:
    # The page's form sends one ``formats`` per ticked box; the API one list.
    asked = request.query_params.getlist("formats")
    shapes = shapes_asked(",".join(asked) if asked else None)
    token = order_cookie(request, order_id)
    return zip_response(runtime_of(request), order_id, token, shapes, favourites=favourites)


@router.post("/orders/{order_id}/pay")
async def pay(request: Request, order_id: str) -> Response:
    runtime = runtime_of(request)
    form = await read_page_form(request)
    try:
        csrf_of(request).check(request, form.first(CSRF_FIELD))
        url = await run_in_threadpool(
            checkout.start_checkout,
            runtime.sessions,
            runtime.payments,
            runtime.tiers,
            order_id,
            order_cookie(request, order_id),
            base_url=base_url(request, runtime),
            cancel_query="?cancelled=1",
        )
    except checkout.AlreadyPaid:
        return RedirectResponse(f"/orders/{order_id}", status_code=303)
    except HeadshotsError as error:
        return error_page(request, error)
    return RedirectResponse(url, status_code=303)


@router.get("/orders/{order_id}/delete", response_class=HTMLResponse)
def delete_confirm(request: Request, order_id: str) -> HTMLResponse:
    runtime = runtime_of(request)
    try:
        with transaction(runtime.sessions) as session:
            order = service.open_order(session, order_id, order_cookie(request, order_id))
            count = sum(1 for v in order.variations if v.status in SHOWABLE)
            paid = order.is_paid
    except HeadshotsError as error:
        return error_page(request, error)
    return render(
        request,
        "delete.html",
        {"order_id": order_id, "count": count, "paid": paid},
        headers=NO_STORE,
    )


@router.post("/orders/{order_id}/delete")
async def delete(request: Request, order_id: str) -> Response:
    runtime = runtime_of(request)
    form = await read_page_form(request)
    try:
        csrf_of(request).check(request, form.first(CSRF_FIELD))
        token = order_cookie(request, order_id)

        def work() -> None:
            with transaction(runtime.sessions) as session:
                service.delete_order(session, runtime.blobs, order_id, token)

        await run_in_threadpool(work)
    except HeadshotsError as error:
        return error_page(request, error)
    response = RedirectResponse("/deleted", status_code=303)
    response.delete_cookie(f"order_{order_id}", path="/")
    return response


@router.get("/deleted", response_class=HTMLResponse)
def deleted(request: Request) -> HTMLResponse:
    return render(request, "deleted.html")


# --- the embedded provider's test checkout (no money moves) ----------------------------


@dataclass(frozen=True)
class Purchase:
    """What a test checkout sells: an order, or a team's seats (orders.teams)."""

    id: str
    label: str
    description: str
    amount_cents: int
    currency: str
    paid: bool
    back: str


def _checkout_purchase(runtime: Runtime, session_id: str) -> Purchase | None:
    if not session_id.startswith("lcs_") or len(session_id) > 64:
        return None
    with transaction(runtime.sessions) as session:
        order = session.scalars(
            select(Order).where(Order.checkout_session_id == session_id)
        ).first()
        if order is not None and not order.is_tombstone:
            styles = len(order.styles)
            plural = "s" if styles != 1 else ""
            return Purchase(
                id=order.id,
                label="Order",
                description=f"{order.tier.title()} tier, {styles} style{plural}",
                amount_cents=order.amount_cents,
                currency=order.currency,
                paid=order.is_paid,
                back=f"/orders/{order.id}",
            )
        team = session.scalars(select(Team).where(Team.checkout_session_id == session_id)).first()
        if team is not None and not team.has_ended:
            return Purchase(
                id=team.id,
                label="Team",
                description=f"{team.name}: {team.seats} seats, {len(team.styles)} styles each",
                amount_cents=team.amount_cents,
                currency=team.currency,
                paid=team.is_paid,
                back=f"/teams/{team.id}",
            )
    return None


@router.get("/pay/local/{session_id}", response_class=HTMLResponse)
def local_checkout(request: Request, session_id: str) -> HTMLResponse:
    runtime = runtime_of(request)
    purchase = _checkout_purchase(runtime, session_id)
    return render(
        request,
        "local_checkout.html",
        {
            "purchase": purchase,
            "session_id": session_id,
            "price": format_price(purchase.amount_cents, purchase.currency) if purchase else "",
        },
        status_code=200 if purchase else 404,
        headers=NO_STORE,
    )


@router.post("/pay/local/{session_id}")
async def local_pay(request: Request, session_id: str) -> Response:
    runtime = runtime_of(request)
    form = await read_page_form(request)
    payments = runtime.payments
    try:
        csrf_of(request).check(request, form.first(CSRF_FIELD))
        purchase = await run_in_threadpool(_checkout_purchase, runtime, session_id)
        if not isinstance(payments, LocalPayments) or purchase is None:
            raise service.OrderNotFound("This test checkout does not exist.")
        payload, headers = payments.confirmation(
            session_id=session_id,
            order_id=purchase.id,
            amount_cents=purchase.amount_cents,
            currency=purchase.currency,
        )
        await run_in_threadpool(
            checkout.receive_payment, runtime.sessions, payments, payload, headers
        )
    except HeadshotsError as error:
        return error_page(request, error)
    return RedirectResponse(f"{purchase.back}?paid=1", status_code=303)
