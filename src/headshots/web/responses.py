"""What the API and the pages answer alike about an order: its JSON, its images, its zip.

The API's routes open an order with its bearer token and the pages with its
cookie (web.deps); past that, both answer through these functions. The
``orders`` argument says which addresses the answer links to.
"""

from __future__ import annotations

import io
import zipfile

from fastapi import Response
from fastapi.responses import JSONResponse

from headshots.credentials import images as credentials
from headshots.errors import HeadshotsError
from headshots.imaging.formats import Format, parse_formats, recorded_face
from headshots.orders import service
from headshots.orders.db import transaction
from headshots.orders.models import VariationStatus
from headshots.runtime import Runtime
from headshots.storage.base import BlobNotFound
from headshots.web.schemas import API_ORDERS, order_json

NO_STORE = {"Cache-Control": "no-store"}
STILL_STORING = "This image is still being stored; try again in a moment."
# The order's addresses as the pages give them: opened with the order's
# cookie, which the JSON API does not accept (web.api).
ORDERS = "/orders"


class NoFavourites(service.NotReady):
    code = "no_favourites"
    message = "No image of this order is marked as a favourite: mark one, or download them all."


def order_response(
    runtime: Runtime, order_id: str, token: str | None, orders: str = API_ORDERS
) -> JSONResponse:
    with transaction(runtime.sessions) as session:
        order = service.open_order(session, order_id, token)
        return JSONResponse(order_json(order, orders), headers=NO_STORE)


def image_of(
    runtime: Runtime,
    order_id: str,
    variation_id: str,
    token: str | None,
    *,
    clean: bool,
    shape: Format = Format.PORTRAIT,
) -> tuple[bytes, str]:
    """The image's bytes and the file name a person saves it under.

    Unpaid, the watermarked preview (``clean`` refused); paid, the preview
    without its mark, and the download in the ``shape`` asked for.
    """
    with transaction(runtime.sessions) as session:
        order = service.open_order(session, order_id, token)
        variation = service.find_variation(order, variation_id)
        paid = order.is_paid
        if clean and not paid:
            raise service.PaymentRequired()
        # A paid order's previews are made from its clean image (decision 0016).
        blob = variation.image_blob if clean or paid else variation.preview_blob
        if not variation.showable or blob is None:
            raise service.NotReady()
        wrapped_key = order.wrapped_key
        finishing = variation.status == VariationStatus.FINISHING
        name = file_name(variation.style, variation.index, shape)
        made = credentials.facts_of(runtime.settings, order, variation)  # decision 0011
        face = recorded_face(variation.details)
    assert wrapped_key is not None
    data = _stored(runtime, order_id, wrapped_key, blob, finishing=finishing)
    if clean:
        return credentials.shaped_png(runtime.settings, made, data, shape, face), name
    if paid:
        return credentials.clean_preview(
            runtime.settings, made, data, runtime.settings.preview_max
        ), name
    return data, name


class UnknownFormat(HeadshotsError):
    status_code = 422
    code = "unknown_format"
    message = "There is no such format: choose portrait, square or round."


def shapes_asked(text: str | None) -> list[Format]:
    """The formats a query asks for (``portrait,square``); the portrait when none."""
    if text is None:
        return [Format.PORTRAIT]
    try:
        return parse_formats(text)
    except ValueError as error:
        raise UnknownFormat(str(error)) from None


def shape_asked(text: str | None) -> Format:
    """The one format a single download asks for."""
    shapes = shapes_asked(text)
    if len(shapes) > 1:
        raise UnknownFormat("Ask for one format per image, or download the zip for several.")
    return shapes[0]


def file_name(style: str, index: int, shape: Format) -> str:
    """``corporate-2-square.png``: style, number and format, nothing about the person."""
    return f"{style}-{index}-{shape.value}.png"


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


def preview_response(
    runtime: Runtime, order_id: str, variation_id: str, token: str | None
) -> Response:
    data, _ = image_of(runtime, order_id, variation_id, token, clean=False)
    return Response(data, media_type="image/jpeg", headers=NO_STORE)


def download_response(
    runtime: Runtime,
    order_id: str,
    variation_id: str,
    token: str | None,
    shape: Format = Format.PORTRAIT,
) -> Response:
    data, name = image_of(runtime, order_id, variation_id, token, clean=True, shape=shape)
    return Response(
        data,
        media_type="image/png",
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'},
    )


def zip_response(
    runtime: Runtime,
    order_id: str,
    token: str | None,
    shapes: list[Format] | None = None,
    *,
    favourites: bool = False,
) -> Response:
    """Every clean headshot of a paid order, in each of ``shapes`` (the portrait by default);
    with ``favourites``, only those the person marked."""
    shapes = shapes or [Format.PORTRAIT]
    with transaction(runtime.sessions) as session:
        order = service.open_order(session, order_id, token)
        if not order.is_paid:
            raise service.PaymentRequired()
        chosen = [v for v in order.variations if v.favourite or not favourites]
        if not chosen:
            raise NoFavourites()
        wanted = [
            (
                v.style,
                v.index,
                v.image_blob,
                v.status == VariationStatus.FINISHING,
                credentials.facts_of(runtime.settings, order, v),
                recorded_face(v.details),
            )
            for v in chosen
            if v.showable and v.image_blob
        ]
        wrapped_key = order.wrapped_key
        archive_name = f"headshots-{order.created_at:%Y-%m-%d}-{order.tier}.zip"
    if not wanted:
        raise service.NotReady("No image of this order is ready yet.")
    assert wrapped_key is not None
    buffer = io.BytesIO()
    # PNGs are already compressed; storing them keeps the zip fast.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for style, index, blob, finishing, made, face in wanted:
            assert blob is not None
            try:
                stored = _stored(runtime, order_id, wrapped_key, blob, finishing=finishing)
            except service.NotReady:
                continue  # shown a moment before it is stored: not in this zip yet
            for shape in shapes:
                png = credentials.shaped_png(runtime.settings, made, stored, shape, face)
                archive.writestr(file_name(style, index, shape), png)
    if not archive.namelist():
        raise service.NotReady(STILL_STORING)
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{archive_name}"'},
    )
