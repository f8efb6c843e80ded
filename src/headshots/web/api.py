"""The JSON API.

Every order call needs ``Authorization: Bearer <token>``; a missing or wrong
token gets the same 404 as an order that does not exist. The order's cookie
is not accepted here: a browser sends it on requests another site makes it
send, and only the pages, whose every change carries a CSRF token, take it
(decision 0003). The pages serve their own images and progress with it,
through the same functions as the API's routes below (web.responses), and
both call the same use cases in orders/.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urljoin

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from headshots.engines.base import declared, default_engine_name, describe_style
from headshots.errors import HeadshotsError
from headshots.orders import checkout as checkout_service
from headshots.orders import intake, service
from headshots.orders.db import transaction
from headshots.styles import STYLES
from headshots.web import schemas
from headshots.web.deps import RuntimeDep, TokenDep, backdrop_asked, base_url
from headshots.web.multipart import (
    MAX_WEBHOOK_BYTES,
    FormError,
    WebhookTooLarge,
    read_body,
    read_form,
)
from headshots.web.responses import (
    NO_STORE,
    download_response,
    order_response,
    preview_response,
    shape_asked,
    shapes_asked,
    zip_response,
)
from headshots.web.schemas import file, refusals
from headshots.web.security import client_address, limiter_of

log = logging.getLogger(__name__)
# Every route answers a request it cannot read with 422 and an Error body
# (web.app), not FastAPI's own validation shape.
router = APIRouter(prefix="/api", responses=refusals(422))


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
        # A team member's order: the team's styles, prepaid, one seat.
        if form.fields.get("tier") or form.fields.get("styles"):
            raise FormError(
                "A team member's order takes the team's styles: leave out 'tier' and 'styles'."
            )
        joined = await run_in_threadpool(
            intake.order_for_team,
            runtime,
            selfie_bytes,
            code=form.one("team"),
            display_name=form.fields.get("display_name", [None])[0],
        )
        created = joined.created
    else:
        tier_id = form.one("tier")
        style_ids = [s.strip() for s in form.fields.get("styles", []) if s.strip()]
        backdrop = backdrop_asked(form.fields.get("backdrop", [None])[0])
        created = await run_in_threadpool(
            intake.order_from_upload,
            runtime,
            selfie_bytes,
            tier_id=tier_id,
            style_ids=style_ids,
            backdrop=backdrop,
        )
    body = schemas.order_of(created.order)
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


@router.get(
    "/orders/{order_id}/variations/{variation_id}/preview",
    response_class=Response,
    responses={**file("image/jpeg", "The watermarked preview."), **refusals(404, 409)},
)
def preview(order_id: str, variation_id: str, runtime: RuntimeDep, token: TokenDep) -> Response:
    return preview_response(runtime, order_id, variation_id, token)


@router.get(
    "/orders/{order_id}/variations/{variation_id}/download",
    response_class=Response,
    responses={**file("image/png", "The clean headshot."), **refusals(402, 404, 409)},
)
def download(
    order_id: str,
    variation_id: str,
    runtime: RuntimeDep,
    token: TokenDep,
    format: Annotated[
        str | None,
        Query(
            description="`portrait` (4:5, the default), `square` (1:1, framed on the face) "
            "or `round` (a square PNG with transparent corners)."
        ),
    ] = None,
) -> Response:
    return download_response(runtime, order_id, variation_id, token, shape_asked(format))


@router.get(
    "/orders/{order_id}/download.zip",
    response_class=Response,
    responses={**file("application/zip", "Every clean headshot."), **refusals(402, 404, 409)},
)
def download_zip(
    order_id: str,
    runtime: RuntimeDep,
    token: TokenDep,
    formats: Annotated[
        str | None,
        Query(
            description="The formats to include, e.g. `portrait,square`; the portrait alone "
            "by default."
        ),
    ] = None,
    favourites: Annotated[
        bool, Query(description="Only the favourites (409 when none is marked).")
    ] = False,
) -> Response:
    return zip_response(runtime, order_id, token, shapes_asked(formats), favourites=favourites)


@router.post("/orders/{order_id}/checkout", responses=refusals(404, 409, 502))
def checkout(
    order_id: str, request: Request, runtime: RuntimeDep, token: TokenDep
) -> schemas.Checkout:
    base = base_url(request, runtime)
    url = checkout_service.start_checkout(
        runtime.sessions,
        runtime.payments,
        runtime.tiers,
        order_id,
        token,
        base_url=base,
        cancel_query="",
    )
    # API clients get an absolute URL; the host is an allowed one (web.guards).
    url = urljoin(base, url)
    return schemas.Checkout(checkout_url=url, test_mode=runtime.payments.test_mode)


@router.delete("/orders/{order_id}", status_code=204, responses=refusals(404, 503))
def delete_order(order_id: str, runtime: RuntimeDep, token: TokenDep) -> Response:
    with transaction(runtime.sessions) as session:
        service.delete_order(session, runtime.blobs, order_id, token)
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
    )
    return schemas.PaymentReceipt(received=True, **applied)


def error_body(error: HeadshotsError) -> dict[str, Any]:
    return schemas.Error(error=error.code, detail=error.detail).model_dump()
