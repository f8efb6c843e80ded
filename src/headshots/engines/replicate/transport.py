"""The one retry policy for every call to Replicate.

The ``replicate`` client wraps its default transport in its own retrier
(up to 10 attempts of GETs on 429/503/504, Retry-After unbounded). The
engine mounts this transport for all URLs instead, so exactly one policy
applies, bounded and the same for API calls and file downloads:

- 429: wait per ``Retry-After`` (capped), plus jitter so a burst of
  predictions does not come back in lockstep;
- 500/502/503/504 and network errors: exponential backoff with jitter;
- a prediction create (POST) is resent only when it surely never left this
  machine (connection refused, name not resolved) or was throttled (429).
  A create answered 5xx, or cut off mid-way, may have made a prediction
  behind a proxy that then failed: sending it again could pay twice, so it
  is handed back to the engine, which looks for the prediction instead
  (docs/decisions/0014-hosted-models.md).
"""

from __future__ import annotations

import asyncio
import functools
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import certifi
import httpx

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 20.0
    max_retry_after_seconds: float = 60.0

    def backoff(self, attempt: int) -> float:
        delay: float = min(self.max_backoff_seconds, self.backoff_seconds * 2.0 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.5)

    def retry_after(self, response: httpx.Response, attempt: int) -> float:
        wanted = _parse_retry_after(response.headers.get("retry-after", ""))
        if wanted is None:
            return self.backoff(attempt)
        return min(self.max_retry_after_seconds, wanted) * random.uniform(1.0, 1.2)


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def is_create(request: httpx.Request) -> bool:
    """A request that may start a paid prediction (every POST but a cancel)."""
    return request.method == "POST" and not request.url.path.endswith("/cancel")


def never_sent(error: httpx.TransportError) -> bool:
    """Whether the request surely never left this machine."""
    return isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def _resendable(request: httpx.Request, error: httpx.TransportError) -> bool:
    return not is_create(request) or never_sent(error)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process.

    httpx builds a new one, loading every CA certificate (about 30 ms), for
    each client and transport it makes; an order makes several per style.
    """
    return ssl.create_default_context(cafile=certifi.where())


class RetryingTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport(
            verify=tls_context(),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=64),
        )
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        # How many times this transport waited and resent: the tests and the
        # bench read it, and it shows a provider under strain in the details.
        self.retries = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 1
        while True:
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.TransportError as error:
                if attempt >= self.policy.attempts or not _resendable(request, error):
                    raise
                await self._sleep(self.policy.backoff(attempt))
            else:
                if (
                    response.status_code not in RETRY_STATUSES
                    or attempt >= self.policy.attempts
                    or (is_create(request) and response.status_code != 429)
                ):
                    return response
                if response.status_code == 429:
                    delay = self.policy.retry_after(response, attempt)
                else:
                    delay = self.policy.backoff(attempt)
                await response.aclose()
                await self._sleep(delay)
            attempt += 1
            self.retries += 1

    async def aclose(self) -> None:
        await self._inner.aclose()
