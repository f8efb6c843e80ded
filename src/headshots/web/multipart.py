"""Reading the order form while it streams in.

Starlette's own form parser spools large files to a temporary file on disk,
which would write a person's photo unencrypted. This parser keeps the upload
in memory and stops reading the moment it passes the byte limit, so an
oversized upload costs at most the limit, never the whole body.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from headshots.errors import HeadshotsError
from headshots.imaging.intake import file_too_large

MAX_FIELDS = 24
MAX_FIELD_BYTES = 1024


class FormError(HeadshotsError):
    status_code = 422
    code = "bad_form"
    message = "The form could not be read. Send it as multipart/form-data."


@dataclass
class OrderForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def one(self, name: str) -> str:
        values = self.fields.get(name, [])
        if len(values) != 1 or not values[0].strip():
            raise FormError(f"The field {name!r} is required, once.")
        return values[0].strip()


class _Collector:
    def __init__(self, file_fields: set[str], max_file_bytes: int) -> None:
        self.form = OrderForm()
        self.file_fields = file_fields
        self.max_file_bytes = max_file_bytes
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
                raise file_too_large(self.max_file_bytes)
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
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise FormError()
    declared = request.headers.get("content-length")
    budget = max_file_bytes + MAX_FIELDS * (MAX_FIELD_BYTES + 512) + 4096
    if declared and declared.isdigit() and int(declared) > budget:
        raise file_too_large(max_file_bytes)
    collector = _Collector(file_fields, max_file_bytes)
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
                raise file_too_large(max_file_bytes)
            parser.write(chunk)
        parser.finalize()
    except HeadshotsError:
        raise
    except Exception as error:  # the parser's own errors on malformed bodies
        raise FormError() from error
    return collector.form
