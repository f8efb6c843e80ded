"""Reading request bodies while they stream in: forms and webhooks.

Starlette's own form parser spools large files to a temporary file on disk,
which would write a person's photo unencrypted (decision 0002), and reads a
body of any size. Every body this service reads goes through here instead:
kept in memory, and refused with 413 the moment it passes its byte limit, so
an oversized body costs at most the limit, never the whole body.

- ``read_form``: the order form with the selfie (``/api/orders``, ``/start``).
- ``read_page_form``: every other page form (a CSRF token, a tier, styles),
  urlencoded or multipart, no file, at most ``MAX_PAGE_FORM_BYTES``.
- ``read_body``: a raw body such as a payment webhook's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from headshots.errors import HeadshotsError
from headshots.imaging.intake import file_too_large

MAX_FIELDS = 24
MAX_FIELD_BYTES = 1024
# A page form holds a CSRF token, a tier and at most six styles: a few
# hundred bytes. The margin is for browsers' boundaries and headers.
MAX_PAGE_FORM_BYTES = 16 * 1024
# Payment and Replicate webhooks are small JSON events.
MAX_WEBHOOK_BYTES = 1024 * 1024


class FormError(HeadshotsError):
    status_code = 422
    code = "bad_form"
    message = "The form could not be read. Send it as multipart/form-data."


class BodyTooLarge(HeadshotsError):
    status_code = 413
    code = "too_large"
    message = (
        "The form is larger than this page ever sends and was not read. "
        "Reload the page and send it again."
    )


class WebhookTooLarge(BodyTooLarge):
    message = "The webhook body is larger than 1 MB and was not read."


@dataclass
class OrderForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def first(self, name: str) -> str:
        """The field's first value, or an empty string without one."""
        values = self.fields.get(name)
        return values[0] if values else ""

    def one(self, name: str) -> str:
        values = self.fields.get(name, [])
        if len(values) != 1 or not values[0].strip():
            raise FormError(f"The field {name!r} is required, once.")
        return values[0].strip()


class _Collector:
    def __init__(
        self, file_fields: set[str], max_file_bytes: int, too_large: HeadshotsError
    ) -> None:
        self.form = OrderForm()
        self.file_fields = file_fields
        self.max_file_bytes = max_file_bytes
        self.too_large = too_large
        self._header_name = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._is_file = False
        self._chunks: list[bytes] = []
        self._size = 0

    def on_part_begin(self) -> None:
        self._headers, self._chunks, self._size = {}, [], 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        key = self._header_name.lower()
        self._headers[key] = self._headers.get(key, b"") + data[start:end]

    def on_header_end(self) -> None:
        self._header_name = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        # The file name is never kept: it can name the person.
        self._is_file = b"filename" in options or self._name in self.file_fields
        if sum(len(v) for v in self.form.fields.values()) >= MAX_FIELDS:
            raise FormError("The form has too many fields.")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._size += end - start
        limit = self.max_file_bytes if self._is_file else MAX_FIELD_BYTES
        if self._size > limit:
            if self._is_file:
                raise self.too_large
            raise FormError(f"The field {self._name[:40]!r} is too long.")
        self._chunks.append(data[start:end])

    def on_part_end(self) -> None:
        body = b"".join(self._chunks)
        self._chunks = []
        if self._is_file:
            if self._name in self.form.files:
                raise FormError(f"Send one file in {self._name[:40]!r}, not several.")
            self.form.files[self._name] = body
        else:
            try:
                value = body.decode("utf-8")
            except UnicodeDecodeError:
                raise FormError(f"The field {self._name[:40]!r} is not text.") from None
            self.form.fields.setdefault(self._name, []).append(value)


async def read_form(request: Request, *, file_fields: set[str], max_file_bytes: int) -> OrderForm:
    """The order form with its photo; 413 past ``max_file_bytes`` (and the fields' room)."""
    budget = max_file_bytes + MAX_FIELDS * (MAX_FIELD_BYTES + 512) + 4096
    return await _read_multipart(
        request,
        file_fields=file_fields,
        max_file_bytes=max_file_bytes,
        budget=budget,
        too_large=file_too_large(max_file_bytes),
    )


async def read_page_form(request: Request) -> OrderForm:
    """A page form without files, urlencoded (as browsers send it) or multipart."""
    content_type, _ = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"multipart/form-data":
        # A file in a page form counts against the page form's few bytes.
        return await _read_multipart(
            request,
            file_fields=set(),
            max_file_bytes=0,
            budget=MAX_PAGE_FORM_BYTES,
            too_large=BodyTooLarge(),
        )
    # Anything else is read as urlencoded: an empty or foreign body yields no
    # valid CSRF token, and the page refuses it as such.
    body = await read_body(request, max_bytes=MAX_PAGE_FORM_BYTES, too_large=BodyTooLarge())
    form = OrderForm()
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise FormError("The form could not be read. Reload the page and send it again.") from None
    for name, value in pairs:
        form.fields.setdefault(name, []).append(value)
    return form


async def read_body(request: Request, *, max_bytes: int, too_large: HeadshotsError) -> bytes:
    """The whole body in memory, or ``too_large`` as soon as it passes ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_multipart(
    request: Request,
    *,
    file_fields: set[str],
    max_file_bytes: int,
    budget: int,
    too_large: HeadshotsError,
) -> OrderForm:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise FormError()
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > budget:
        raise too_large
    collector = _Collector(file_fields, max_file_bytes, too_large)
    callbacks = {
        name: getattr(collector, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
        )
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > budget:
                raise too_large
            parser.write(chunk)
        parser.finalize()
    except HeadshotsError:
        raise
    except Exception as error:  # the parser's own errors on malformed bodies
        raise FormError() from error
    return collector.form
