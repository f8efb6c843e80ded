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
from headshots.imaging.selfie import PreparedSelfie, prepare_selfie
from headshots.orders import checkout as checkout_service
from headshots.orders import service
from headshots.orders.db import transaction
from headshots.orders.models import SHOWABLE, OrderStatus, VariationStatus
from headshots.orders.teams import service as teams
from headshots.runtime import Runtime
from headshots.storage.base import BlobNotFound
from headshots.styles import STYLES
from headshots.tiers import choose
from headshots.web import schemas
from headshots.web.multipart import (
    MAX_WEBHOOK_BYTES,
    FormError,
    OrderForm,
    WebhookTooLarge,
    read_body,
    read_form,
)
from headshots.web.schemas import API_ORDERS, file, refusals
from headshots.web.security import client_address, limiter_of

log = logging.getLogger(__name__)
# Every route answers a request it cannot read with 422 and an Error body
# (web.app), not FastAPI's own validation shape.
router = APIRouter(prefix="/api", responses=refusals(422))

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


@router.post(
    "/orders",
    status_code=201,
    response_model=schemas.NewOrder,
    responses=refusals(413, 429, 503, 507),
)
async def create_order(request: Request, runtime: RuntimeDep) -> JSONResponse:
    settings = runtime.settings
    limiter_of(request).take(client_address(request))
    form = await read_form(
        request, file_fields={"selfie"}, max_file_bytes=settings.max_upload_bytes
    )
    selfie_bytes = form.files.get("selfie")
    if selfie_bytes is None:
        raise FormError("Attach your photo in the field 'selfie'.")
    if "team" in form.fields:
        return await _join_team(runtime, form, selfie_bytes)
    tier_id = form.one("tier")
    style_ids = [s.strip() for s in form.fields.get("styles", []) if s.strip()]

    def work() -> tuple[service.NewOrder, schemas.Order, PreparedSelfie]:
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
                selfie_png=service.encode_png(selfie.image),
                tier_id=tier_id,
                style_ids=style_ids,
                engine=default_engine_name(settings),
                preflight=[finding.as_dict() for finding in warnings],
            )
            body = schemas.order_of(created.order)
        return created, body, selfie

    created, body, selfie = await run_in_threadpool(work)
    if runtime.local_consumer:
        # This process makes the order: its workers need not analyse the selfie again.
        runtime.selfies.put(created.order.id, selfie)
    # Enqueue only after the commit: a worker must find the rows.
    runtime.queue.enqueue_styles(created.jobs)
    answer = schemas.NewOrder(**body.model_dump(), token=created.token)
    return JSONResponse(answer.model_dump(mode="json"), status_code=201, headers=NO_STORE)


async def _join_team(runtime: Runtime, form: OrderForm, selfie_bytes: bytes) -> JSONResponse:
    """A team member's order: the team's styles, prepaid, one seat (orders.teams)."""
    if form.fields.get("tier") or form.fields.get("styles"):
        raise FormError(
            "A team member's order takes the team's styles: leave out 'tier' and 'styles'."
        )
    code = form.one("team")
    display_name = form.fields.get("display_name", [None])[0]
    settings = runtime.settings

    def work() -> tuple[service.NewOrder, schemas.Order, PreparedSelfie]:
        # Refused before the photo is read; the seat is taken only with the order.
        with transaction(runtime.sessions) as session:
            teams.check_invite(session, code)
        selfie = prepare_selfie(selfie_bytes, settings, repairs_crop=engine_repairs_crop(settings))
        warnings = selfie.preflight.warnings if selfie.preflight else []
        with transaction(runtime.sessions) as session:
            joined = teams.join(
                session,
                runtime.blobs,
                settings,
                code=code,
                selfie_png=service.encode_png(selfie.image),
                engine=default_engine_name(settings),
                display_name=display_name,
                preflight=[finding.as_dict() for finding in warnings],
            )
            body = schemas.order_of(joined.created.order)
        return joined.created, body, selfie

    created, body, selfie = await run_in_threadpool(work)
    if runtime.local_consumer:
        runtime.selfies.put(created.order.id, selfie)
    runtime.queue.enqueue_styles(created.jobs)
    answer = schemas.NewOrder(**body.model_dump(), token=created.token)
    return JSONResponse(answer.model_dump(mode="json"), status_code=201, headers=NO_STORE)


@router.get("/styles")
def list_styles(runtime: RuntimeDep) -> schemas.Styles:
    """The styles a new order may pick, described as the configured engine makes them."""
    settings = runtime.settings
    engine = default_engine_name(settings)
    made = declared(settings, engine)
    return schemas.Styles(
        engine=engine,
        generative=made.generative,
        changes_clothes=made.changes_clothes,
        styles=[
            schemas.Style(
                id=style.id, title=style.title, description=describe_style(style, settings)
            )
            for style in STYLES
        ],
    )


@router.get("/orders/{order_id}", response_model=schemas.Order, responses=refusals(404))
def get_order(order_id: str, runtime: RuntimeDep, token: TokenDep) -> JSONResponse:
    return order_response(runtime, order_id, token)


def order_response(
    runtime: Runtime, order_id: str, token: str | None, orders: str = API_ORDERS
) -> JSONResponse:
    with transaction(runtime.sessions) as session:
        order = service.open_order(session, order_id, token)
        return JSONResponse(schemas.order_json(order, orders), headers=NO_STORE)


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
        made = credentials.facts_of(runtime, order, variation)  # decision 0011
    assert wrapped_key is not None
    data = _stored(runtime, order_id, wrapped_key, blob, finishing=finishing)
    return (credentials.downloadable_png(runtime, made, data) if clean else data), name


# The team routes copy a member's clean PNG exactly as it is downloaded.
image_of = _image


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


@router.get(
    "/orders/{order_id}/variations/{variation_id}/preview",
    response_class=Response,
    responses={**file("image/jpeg", "The watermarked preview."), **refusals(404, 409)},
)
def preview(order_id: str, variation_id: str, runtime: RuntimeDep, token: TokenDep) -> Response:
    return preview_response(runtime, order_id, variation_id, token)


def preview_response(
    runtime: Runtime, order_id: str, variation_id: str, token: str | None
) -> Response:
    data, _ = _image(runtime, order_id, variation_id, token, clean=False)
    return Response(data, media_type="image/jpeg", headers=NO_STORE)


@router.get(
    "/orders/{order_id}/variations/{variation_id}/download",
    response_class=Response,
    responses={**file("image/png", "The clean headshot."), **refusals(402, 404, 409)},
)
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


@router.get(
    "/orders/{order_id}/download.zip",
    response_class=Response,
    responses={**file("application/zip", "Every clean headshot."), **refusals(402, 404, 409)},
)
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
                credentials.facts_of(runtime, order, v),
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
            archive.writestr(name, credentials.downloadable_png(runtime, made, stored))
    if not archive.namelist():
        raise service.NotReady(STILL_STORING)
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={**NO_STORE, "Content-Disposition": 'attachment; filename="headshots.zip"'},
    )


@router.post("/orders/{order_id}/checkout", responses=refusals(404, 409, 502))
def checkout(
    order_id: str, request: Request, runtime: RuntimeDep, token: TokenDep
) -> schemas.Checkout:
    url = start_checkout(runtime, request, order_id, token, cancel_query="")
    # API clients get an absolute URL; the host is an allowed one (web.guards).
    url = urljoin(runtime.settings.public_url or str(request.base_url), url)
    return schemas.Checkout(checkout_url=url, test_mode=runtime.payments.test_mode)


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


@router.delete("/orders/{order_id}", status_code=204, responses=refusals(404, 503))
def delete_order(order_id: str, runtime: RuntimeDep, token: TokenDep) -> Response:
    with transaction(runtime.sessions) as session:
        order = service.find_order(session, order_id, token)
        if not service.shred(session, runtime.blobs, order, OrderStatus.DELETED):
            raise service.OrderNotFound()  # another request shredded it first
    runtime.shredded([order_id])
    return Response(status_code=204)


@router.post(
    "/webhooks/{provider}",
    response_model_exclude_none=True,
    responses=refusals(400, 404, 413),
)
async def payment_webhook(
    provider: str, request: Request, runtime: RuntimeDep
) -> schemas.PaymentReceipt:
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
        runtime.changes,
    )
    return schemas.PaymentReceipt(received=True, **applied)


def error_body(error: HeadshotsError) -> dict[str, Any]:
    return schemas.Error(error=error.code, detail=error.detail).model_dump()
