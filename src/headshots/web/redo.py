"""Redo and favourites, in the JSON API and the order page.

A person may have a variation made again with a new seed (orders.redo) and
mark the ones they like (orders.favourites). The API's routes open the
order with its bearer token, the page's forms with its cookie and a CSRF
token (decision 0003); both go through the same use cases.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from headshots.errors import HeadshotsError
from headshots.orders import favourites, redo
from headshots.orders.db import transaction
from headshots.runtime import Runtime
from headshots.web import schemas
from headshots.web.deps import RuntimeDep, TokenDep, order_cookie, runtime_of
from headshots.web.multipart import read_page_form
from headshots.web.pages import error_page
from headshots.web.responses import NO_STORE, ORDERS
from headshots.web.schemas import API_ORDERS, refusals, variation_of
from headshots.web.security import CSRF_FIELD, csrf_of

router = APIRouter(prefix="/api", responses=refusals(422))
pages = APIRouter(include_in_schema=False)

VARIATION = "/orders/{order_id}/variations/{variation_id}"


def redo_answer(
    runtime: Runtime, order_id: str, variation_id: str, token: str | None, orders: str
) -> schemas.Redo:
    with transaction(runtime.sessions) as session:
        variation = redo.redo(session, order_id, token, variation_id)
        order = variation.order
        return schemas.Redo(
            variation=variation_of(order, variation, orders), redos_left=order.redos_left
        )


def favourite_answer(
    runtime: Runtime,
    order_id: str,
    variation_id: str,
    token: str | None,
    *,
    favourite: bool,
    orders: str,
) -> schemas.Variation:
    with transaction(runtime.sessions) as session:
        variation = favourites.mark(session, order_id, token, variation_id, favourite=favourite)
        return variation_of(variation.order, variation, orders)


# --- the API ------------------------------------------------------------------------


@router.post(
    VARIATION + "/redo",
    status_code=202,
    response_model=schemas.Redo,
    responses=refusals(404, 409),
)
def redo_variation(
    order_id: str, variation_id: str, runtime: RuntimeDep, token: TokenDep
) -> JSONResponse:
    """Make a finished variation again with a new seed; the new image replaces the old."""
    answer = redo_answer(runtime, order_id, variation_id, token, API_ORDERS)
    return JSONResponse(answer.model_dump(mode="json"), status_code=202, headers=NO_STORE)


@router.post(VARIATION + "/favourite", response_model=schemas.Variation, responses=refusals(404))
def mark_favourite(
    order_id: str, variation_id: str, runtime: RuntimeDep, token: TokenDep
) -> schemas.Variation:
    return favourite_answer(
        runtime, order_id, variation_id, token, favourite=True, orders=API_ORDERS
    )


@router.delete(VARIATION + "/favourite", response_model=schemas.Variation, responses=refusals(404))
def unmark_favourite(
    order_id: str, variation_id: str, runtime: RuntimeDep, token: TokenDep
) -> schemas.Variation:
    return favourite_answer(
        runtime, order_id, variation_id, token, favourite=False, orders=API_ORDERS
    )


# --- the order page's buttons ------------------------------------------------------------


@pages.post(VARIATION + "/redo")
async def redo_page(request: Request, order_id: str, variation_id: str) -> Response:
    """The "Make again" button: back to the order, where the tile is remade in place."""
    runtime = runtime_of(request)
    form = await read_page_form(request)
    try:
        csrf_of(request).check(request, form.first(CSRF_FIELD))
        token = order_cookie(request, order_id)
        await run_in_threadpool(redo_answer, runtime, order_id, variation_id, token, ORDERS)
    except HeadshotsError as error:
        return error_page(request, error)
    return RedirectResponse(f"/orders/{order_id}#v-{variation_id}", status_code=303)


@pages.post(VARIATION + "/favourite")
async def favourite_page(request: Request, order_id: str, variation_id: str) -> Response:
    """The favourite button: ``favourite=1`` marks, ``favourite=0`` unmarks."""
    runtime = runtime_of(request)
    form = await read_page_form(request)
    try:
        csrf_of(request).check(request, form.first(CSRF_FIELD))
        token = order_cookie(request, order_id)
        await run_in_threadpool(
            lambda: favourite_answer(
                runtime,
                order_id,
                variation_id,
                token,
                favourite=form.first("favourite") == "1",
                orders=ORDERS,
            )
        )
    except HeadshotsError as error:
        return error_page(request, error)
    return RedirectResponse(f"/orders/{order_id}#v-{variation_id}", status_code=303)
