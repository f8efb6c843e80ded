"""The JSON API.

Every order call needs ``Authorization: Bearer <token>``; a missing or wrong
token gets the same 404 as an order that does not exist. The order's cookie
is not accepted here: a browser sends it on requests another site makes it
send, and only the pages, whose every change carries a CSRF token, take it
(decision 0003). The pages serve their own images and progress with it,
through the same functions as the API's routes below.
"""

from __future__ import annotations

import io
import logging
import zipfile
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urljoin

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from headshots.credentials import images as credentials
from headshots.engines.base import (
    declared,
    default_engine_name,
    describe_style,
    engine_repairs_crop,
)
from headshots.errors import HeadshotsError
from headshots.imaging.codecs import encode_png
from headshots.imaging.identity import LOOKS_DIFFERENT
from headshots.imaging.selfie import prepare_selfie
from headshots.orders import checkout as checkout_service
from headshots.orders import service
from headshots.orders.db import transaction
from headshots.orders.effects import after_commit
from headshots.orders.models import SHOWABLE, Order, OrderStatus, Variation, VariationStatus
from headshots.runtime import Runtime
from headshots.storage.base import BlobNotFound
from headshots.styles import STYLES
from headshots.tiers import choose
from headshots.web.multipart import (
    MAX_WEBHOOK_BYTES,
    FormError,
    WebhookTooLarge,
    read_body,
    read_form,
)
from headshots.web.security import client_address, limiter_of

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api")

NO_STORE = {"Cache-Control": "no-store"}
STILL_STORING = "This image is still being stored; try again in a moment."


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def bearer(authorization: Annotated[str | None, Header()] = None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


TokenDep = Annotated[str | None, Depends(bearer)]

# Where an order's images are fetched: the API's own addresses, or the
# pages' (web.pages), which open with the order's cookie.
API_ORDERS = "/api/orders"


def isoformat(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def variation_json(order: Order, variation: Variation, orders: str = API_ORDERS) -> dict[str, Any]:
    base = f"{orders}/{order.id}/variations/{variation.id}"
    showable = variation.status in SHOWABLE
    flag = variation.identity_flag
    return {
        "id": variation.id,
        "style": variation.style,
        "index": variation.index,
        "seed": variation.seed,
        "status": variation.status,
        "failure": (
            {"code": variation.failure_code, "reason": variation.failure_reason}
            if variation.status == VariationStatus.FAILED
            else None
        ),
        "identity": {
            "distance": variation.identity_distance,
            "flag": flag,
            "message": LOOKS_DIFFERENT if flag else None,
            # The face drifted and a new try is being made; its better image
            # replaces this preview when it lands.
            "rerolling": bool(variation.details.get("rerolling")),
        },
        "seconds": variation.seconds,
        "preview_url": f"{base}/preview" if showable else None,
        "download_url": f"{base}/download" if showable and order.is_paid else None,
    }


def order_json(order: Order, orders: str = API_ORDERS) -> dict[str, Any]:
    counts = {status.value: 0 for status in VariationStatus}
    for variation in order.variations:
        counts[variation.status] += 1
    return {
        "id": order.id,
        "status": order.status,
        "tier": order.tier,
        "styles": order.styles,
        "engine": order.engine,
        "amount_cents": order.amount_cents,
        "currency": order.currency,
        "paid": order.is_paid,
        "created_at": isoformat(order.created_at),
        "expires_at": isoformat(order.expires_at),
        "finished_at": isoformat(order.finished_at),
        "progress": counts,
        "preflight": order.preflight or [],
        "variations": [variation_json(order, v, orders) for v in order.variations],
        "zip_url": f"{orders}/{order.id}/download.zip" if order.is_paid else None,
    }


@router.post("/orders", status_code=201)
async def create_order(request: Request, runtime: RuntimeDep) -> JSONResponse:
    settings = runtime.settings
    limiter_of(request).take(client_address(request))
    form = await read_form(
        request, file_fields={"selfie"}, max_file_bytes=settings.max_upload_bytes
    )
    selfie_bytes = form.files.get("selfie")
    if selfie_bytes is None:
        raise FormError("Attach your photo in the field 'selfie'.")
    tier_id = form.one("tier")
    style_ids = [s.strip() for s in form.fields.get("styles", []) if s.strip()]

    def work() -> tuple[service.NewOrder, dict[str, Any]]:
        choose(runtime.tiers, tier_id, style_ids)  # refuse a bad choice before decoding
        selfie = prepare_selfie(  # the preflight judges for the order's engine (decision 0008)
            selfie_bytes, settings, repairs_crop=engine_repairs_crop(settings)
        )
        warnings = selfie.preflight.warnings if selfie.preflight else []
        with transaction(runtime.sessions) as session:
            created = service.create_order(
                session,
                runtime.blobs,
                settings,
                runtime.tiers,
                selfie_png=encode_png(selfie.image),
                tier_id=tier_id,
                style_ids=style_ids,
                engine=default_engine_name(settings),
                preflight=[finding.as_dict() for finding in warnings],
            )
            # This process may make the order: its workers need not analyse the selfie again.
            after_commit(session).keep_selfie(created.order.id, selfie)
            body = order_json(created.order)
        return created, body

    created, body = await run_in_threadpool(work)
    body["token"] = created.token
    return JSONResponse(body, status_code=201, headers=NO_STORE)


@router.get("/styles")
def list_styles(runtime: RuntimeDep) -> dict[str, Any]:
    """The styles a new order may pick, described as the configured engine makes them."""
    settings = runtime.settings
    engine = default_engine_name(settings)
    made = declared(settings, engine)
    return {
        "engine": engine,
        "generative": made.generative,
        "changes_clothes": made.changes_clothes,
        "styles": [
            {"id": style.id, "title": style.title, "description": describe_style(style, settings)}
            for style in STYLES
        ],
    }


@router.get("/orders/{order_id}")
def get_order(order_id: str, runtime: RuntimeDep, token: TokenDep) -> JSONResponse:
    return order_response(runtime, order_id, token)


def order_response(
    runtime: Runtime, order_id: str, token: str | None, orders: str = API_ORDERS
) -> JSONResponse:
    with transaction(runtime.sessions) as session:
        order = service.open_order(session, order_id, token)
        return JSONResponse(order_json(order, orders), headers=NO_STORE)


def _image(
    runtime: Runtime, order_id: str, variation_id: str, token: str | None, *, clean: bool
) -> tuple[bytes, str]:
    """The image's bytes and the file name a person saves it under."""
    with transaction(runtime.sessions) as session:
        order = service.open_order(session, order_id, token)
        variation = service.find_variation(order, variation_id)
        if clean and not order.is_paid:
            raise service.PaymentRequired()
        blob = variation.image_blob if clean else variation.preview_blob
        if variation.status not in SHOWABLE or blob is None:
            raise service.NotReady()
        wrapped_key = order.wrapped_key
        finishing = variation.status == VariationStatus.FINISHING
        name = f"headshot-{variation.style}-{variation.index}"
        made = credentials.facts_of(runtime.settings, order, variation)  # decision 0011
    assert wrapped_key is not None
    data = _stored(runtime, order_id, wrapped_key, blob, finishing=finishing)
    return (credentials.downloadable_png(runtime.settings, made, data) if clean else data), name


def _stored(
    runtime: Runtime, order_id: str, wrapped_key: bytes, blob: str, *, finishing: bool
) -> bytes:
    """A stored image; NotReady while a finishing variation's pixels are still written."""
    try:
        return runtime.blobs.get(order_id, wrapped_key, blob)
    except BlobNotFound:
        if finishing:
            # Its preview shows a moment before the image itself is stored.
            raise service.NotReady(STILL_STORING) from None
        raise


@router.get("/orders/{order_id}/variations/{variation_id}/preview")
def preview(order_id: str, variation_id: str, runtime: RuntimeDep, token: TokenDep) -> Response:
    return preview_response(runtime, order_id, variation_id, token)


def preview_response(
    runtime: Runtime, order_id: str, variation_id: str, token: str | None
) -> Response:
    data, _ = _image(runtime, order_id, variation_id, token, clean=False)
    return Response(data, media_type="image/jpeg", headers=NO_STORE)


@router.get("/orders/{order_id}/variations/{variation_id}/download")
def download(order_id: str, variation_id: str, runtime: RuntimeDep, token: TokenDep) -> Response:
    return download_response(runtime, order_id, variation_id, token)


def download_response(
    runtime: Runtime, order_id: str, variation_id: str, token: str | None
) -> Response:
    data, name = _image(runtime, order_id, variation_id, token, clean=True)
    return Response(
        data,
        media_type="image/png",
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}.png"'},
    )


@router.get("/orders/{order_id}/download.zip")
def download_zip(order_id: str, runtime: RuntimeDep, token: TokenDep) -> Response:
    return zip_response(runtime, order_id, token)


def zip_response(runtime: Runtime, order_id: str, token: str | None) -> Response:
    with transaction(runtime.sessions) as session:
        order = service.open_order(session, order_id, token)
        if not order.is_paid:
            raise service.PaymentRequired()
        wanted = [
            (
                f"headshot-{v.style}-{v.index}.png",
                v.image_blob,
                v.status == VariationStatus.FINISHING,
                credentials.facts_of(runtime.settings, order, v),
            )
            for v in order.variations
            if v.status in SHOWABLE and v.image_blob
        ]
        wrapped_key = order.wrapped_key
    if not wanted:
        raise service.NotReady("No image of this order is ready yet.")
    assert wrapped_key is not None
    buffer = io.BytesIO()
    # PNGs are already compressed; storing them keeps the zip fast.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, blob, finishing, made in wanted:
            assert blob is not None
            try:
                stored = _stored(runtime, order_id, wrapped_key, blob, finishing=finishing)
            except service.NotReady:
                continue  # shown a moment before it is stored: not in this zip yet
            archive.writestr(name, credentials.downloadable_png(runtime.settings, made, stored))
    if not archive.namelist():
        raise service.NotReady(STILL_STORING)
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={**NO_STORE, "Content-Disposition": 'attachment; filename="headshots.zip"'},
    )


@router.post("/orders/{order_id}/checkout")
def checkout(order_id: str, request: Request, runtime: RuntimeDep, token: TokenDep) -> JSONResponse:
    url = start_checkout(runtime, request, order_id, token, cancel_query="")
    # API clients get an absolute URL; the host is an allowed one (web.guards).
    url = urljoin(runtime.settings.public_url or str(request.base_url), url)
    return JSONResponse({"checkout_url": url, "test_mode": runtime.payments.test_mode})


def start_checkout(
    runtime: Runtime, request: Request, order_id: str, token: str | None, *, cancel_query: str
) -> str:
    """The checkout URL for an order, with links back to this service.

    Without HEADSHOTS_PUBLIC_URL the links back are built from the request's
    host, which web.guards has checked against the allowed hosts.
    """
    base_url = runtime.settings.public_url or str(request.base_url)
    with transaction(runtime.sessions) as session:
        return checkout_service.open_checkout(
            session,
            runtime.payments,
            runtime.tiers,
            order_id,
            token,
            base_url=base_url,
            cancel_query=cancel_query,
        )


@router.delete("/orders/{order_id}", status_code=204)
def delete_order(order_id: str, runtime: RuntimeDep, token: TokenDep) -> Response:
    with transaction(runtime.sessions) as session:
        order = service.find_order(session, order_id, token)
        if not service.shred(session, runtime.blobs, order, OrderStatus.DELETED):
            raise service.OrderNotFound()  # another request shredded it first
    return Response(status_code=204)


@router.post("/webhooks/{provider}")
async def payment_webhook(provider: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Payment notifications: /api/webhooks/stripe, or /api/webhooks/local."""
    if provider != runtime.payments.name:
        raise service.OrderNotFound("There is no such webhook here.")
    payload = await read_body(request, max_bytes=MAX_WEBHOOK_BYTES, too_large=WebhookTooLarge())
    applied = await run_in_threadpool(
        checkout_service.receive_payment,
        runtime.sessions,
        runtime.payments,
        payload,
        dict(request.headers),
    )
    return JSONResponse({"received": True, **applied})


def error_body(error: HeadshotsError) -> dict[str, str]:
    return {"error": error.code, "detail": error.detail}
