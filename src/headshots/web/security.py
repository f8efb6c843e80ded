"""Security of the web layer: headers, CSRF tokens, cookies and rate limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import MutableMapping
from typing import Protocol

from fastapi import Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headshots.config import Settings
from headshots.errors import HeadshotsError

CSRF_COOKIE = "hs_csrf"
CSRF_FIELD = "csrf"
CSRF_KEY_LABEL = b"headshots/csrf/v1"

# Stripe Checkout is reached by a redirect after our own form post, and
# browsers apply form-action to that redirect too.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self' https://checkout.stripe.com",
    )
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


class SecurityHeaders:
    """Adds the headers to every response, streamed ones included.

    A plain ASGI middleware rather than BaseHTTPMiddleware, which would
    buffer the server-sent events of the progress page.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CsrfRefused(HeadshotsError):
    status_code = 403
    code = "csrf"
    message = (
        "This form is out of date or came from another site: go back, reload the page "
        "and send it again."
    )


class RateLimited(HeadshotsError):
    status_code = 429
    code = "rate_limited"
    message = (
        "Too many uploads from your connection in a short time: wait a few minutes and try again."
    )

    def __init__(self, retry_after: float) -> None:
        super().__init__(headers={"Retry-After": str(max(1, round(retry_after)))})


def csrf_key(settings: Settings) -> bytes:
    """A key for CSRF tokens only, derived from the master key (never equal to it)."""
    from headshots.storage.keys import load_master_key

    return hmac.new(load_master_key(settings), CSRF_KEY_LABEL, hashlib.sha256).digest()


class Csrf:
    """Double-submit tokens bound to a random browser cookie by an HMAC.

    The cookie is HttpOnly and SameSite=Lax; every form carries
    HMAC(key, cookie). Another site can make the browser send the cookie
    (on a top-level POST it cannot, with Lax) but can never read it or
    compute the token, and a cookie planted by a sibling domain has no
    matching token without our key.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _sign(self, cookie: str) -> str:
        digest = hmac.new(self._key, cookie.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def token(self, request: Request) -> str:
        """The token for forms on this page; sets up the cookie when missing."""
        cookie = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
        if not cookie or len(cookie) > 64:
            cookie = secrets.token_urlsafe(32)
            request.state.new_csrf = cookie
        return self._sign(cookie)

    def check(self, request: Request, submitted: str | None) -> None:
        cookie = request.cookies.get(CSRF_COOKIE)
        if not cookie or not submitted or len(cookie) > 64:
            raise CsrfRefused()
        if not hmac.compare_digest(self._sign(cookie), submitted):
            raise CsrfRefused()

    @staticmethod
    def attach(request: Request, response: Response, settings: Settings) -> None:
        """Send the cookie a page's token was made from, if it is new."""
        cookie = getattr(request.state, "new_csrf", None)
        if cookie:
            set_cookie(request, response, settings, CSRF_COOKIE, cookie, max_age=None)


def is_https(request: Request, settings: Settings) -> bool:
    public = (settings.public_url or "").lower()
    return request.url.scheme == "https" or public.startswith("https://")


def set_cookie(
    request: Request,
    response: Response,
    settings: Settings,
    name: str,
    value: str,
    *,
    max_age: int | None,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request, settings),
    )


def client_address(request: Request) -> str:
    # uvicorn replaces this with X-Forwarded-For when the request comes from a
    # trusted proxy (127.0.0.1, or FORWARDED_ALLOW_IPS), so behind a proxy it
    # is still the person's address.
    return request.client.host if request.client else "unknown"


class UploadLimiter(Protocol):
    def take(self, client: str) -> None:
        """Spend one upload for ``client``; RateLimited when none is left."""
        ...


class RateLimiter:
    """A token bucket per client address, in this process.

    Each address may spend ``per_hour`` at once and earns them back evenly
    over the hour. With several web processes the buckets live in Redis
    instead (web/limits.py).
    """

    MAX_CLIENTS = 50_000

    def __init__(self, per_hour: int) -> None:
        self.capacity = float(per_hour)
        self.refill_per_second = per_hour / 3600.0
        self._buckets: MutableMapping[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> None:
        """Spend one upload for ``client``; RateLimited when none is left."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill_per_second)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                raise RateLimited(retry_after=(1.0 - tokens) / self.refill_per_second)
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > self.MAX_CLIENTS:
                self._forget_full(now)

    def _forget_full(self, now: float) -> None:
        # A bucket that has refilled holds no information: dropping it keeps
        # memory bounded without letting anyone reset their own limit.
        full_after = self.capacity / self.refill_per_second
        for client, (_, last) in list(self._buckets.items()):
            if now - last >= full_after:
                del self._buckets[client]


def limiter_of(request: Request) -> UploadLimiter:
    limiter: UploadLimiter = request.app.state.limiter
    return limiter


def csrf_of(request: Request) -> Csrf:
    csrf: Csrf = request.app.state.csrf
    return csrf
