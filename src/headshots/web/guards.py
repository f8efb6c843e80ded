"""Guards in front of every request: allowed host names, slow bodies, upload slots.

Plain ASGI middleware, as web.security's headers are, so nothing is buffered.

- **Host names.** Absolute URLs this service builds (checkout return links,
  a local checkout's address) come from ``HEADSHOTS_PUBLIC_URL`` or, without
  it, from the request's Host header. A request naming a host the operator did
  not allow (``HEADSHOTS_ALLOWED_HOSTS``) is refused with 400, so a forged
  Host can never end up in a link or a redirect.
- **Slow bodies.** uvicorn waits for a declared body as long as the client
  keeps the connection open. Each request body must arrive within
  ``HEADSHOTS_BODY_TIMEOUT_SECONDS`` of the request's start, or the request
  is answered 408 and its connection closed.
- **Upload slots.** A client address may have at most
  ``HEADSHOTS_UPLOADS_PER_CLIENT`` request bodies arriving at once; one more
  is answered 429 before its body is read, so a handful of slow clients
  cannot hold every server slot.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headshots.config import Settings
from headshots.errors import HeadshotsError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
WILDCARD_BINDS = ("0.0.0.0", "::", "")  # noqa: S104 (names, not a bind)


class BodyTimeout(HeadshotsError):
    """Raised from ``receive`` when a body is late; handled like every typed error."""

    status_code = 408
    code = "body_timeout"
    message = (
        "The upload took too long to arrive and was stopped. "
        "Check your connection and send it again."
    )
    headers: Mapping[str, str] = {"Connection": "close"}


def allowed_hosts(settings: Settings) -> frozenset[str] | None:
    """Host names (no port) this service answers for; None means any."""
    if settings.allowed_hosts:
        names = {name.strip().lower() for name in settings.allowed_hosts.split(",")}
        if "*" in names:
            return None
        return frozenset(name.strip("[]") for name in names if name)
    names = set(LOCAL_HOSTS)
    if settings.public_url:
        public = urlsplit(settings.public_url).hostname
        if public:
            names.add(public.lower())
    if settings.host not in WILDCARD_BINDS:
        names.add(settings.host.lower().strip("[]"))
    return frozenset(names)


def host_name(header: str) -> str:
    """The name in a Host header, without port or IPv6 brackets."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class RequestGuards:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.hosts = allowed_hosts(settings)
        self.body_timeout = settings.body_timeout_seconds
        self.uploads_per_client = settings.uploads_per_client
        self.receiving: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host")
        if self.hosts is not None and host is not None and host_name(host) not in self.hosts:
            await _refuse(
                send,
                400,
                "bad_host",
                "This server does not answer for that host name. "
                "Use the address its operator published.",
            )
            return
        has_body = "transfer-encoding" in headers or headers.get("content-length", "0") != "0"
        if not has_body:
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        if self.receiving[client] >= self.uploads_per_client:
            await _refuse(
                send,
                429,
                "too_many_uploads",
                "Too many uploads from your address are still arriving. "
                "Wait for them to finish, then try again.",
            )
            return
        self.receiving[client] += 1
        deadline = time.monotonic() + self.body_timeout
        receiving = True

        def done_receiving() -> None:
            nonlocal receiving
            if receiving:
                receiving = False
                self.receiving[client] -= 1
                if self.receiving[client] <= 0:
                    del self.receiving[client]

        async def bounded_receive() -> Message:
            if not receiving:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                done_receiving()
                raise BodyTimeout() from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                done_receiving()
            return message

        try:
            await self.app(scope, bounded_receive, send)
        finally:
            done_receiving()


async def _refuse(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
