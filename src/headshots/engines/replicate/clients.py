"""One API client and one download client per event loop, shared by every call on it.

httpx connections belong to the loop that opened them, so a client cannot
be shared between loops; within one loop it is, and an order's predictions
reuse its connections and its TLS context instead of building their own for
every style. The clients of a loop that ends (``generate`` runs on a loop of
its own) are closed by whoever ran it, through :meth:`LoopClients.close`.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from replicate.client import Client

from headshots.engines.replicate.transport import RetryingTransport, RetryPolicy, tls_context


@dataclass(frozen=True)
class Clients:
    api: Client
    # Outputs are fetched without the token: the download host needs none.
    files: httpx.AsyncClient
    transport: RetryingTransport

    async def aclose(self) -> None:
        await self.files.aclose()
        await self.transport.aclose()


def make_clients(
    token: str, base_url: str | None, timeout: httpx.Timeout, retry: RetryPolicy
) -> Clients:
    transport = RetryingTransport(policy=retry)
    # Mounting our transport for every URL replaces the client's own
    # retrier, so retries do not multiply (see transport.py).
    api = Client(
        api_token=token,
        base_url=base_url,
        timeout=timeout,
        mounts={"all://": transport},
        # Never used (the mount takes every URL), but without it the client
        # would build a default transport and its TLS context.
        transport=transport,
        verify=tls_context(),
    )
    files = httpx.AsyncClient(
        transport=transport, timeout=timeout, follow_redirects=True, verify=tls_context()
    )
    return Clients(api=api, files=files, transport=transport)


class LoopClients:
    """The clients of each running event loop, made on first use there."""

    def __init__(self, make: Callable[[], Clients]) -> None:
        self._make = make
        # Keyed weakly: a loop that is gone takes its entry with it.
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Clients] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self) -> Clients:
        loop = asyncio.get_running_loop()
        with self._lock:
            clients = self._by_loop.get(loop)
            if clients is None:
                clients = self._by_loop[loop] = self._make()
            return clients

    async def close(self) -> None:
        """Close the running loop's clients; the next call on it makes new ones."""
        with self._lock:
            clients = self._by_loop.pop(asyncio.get_running_loop(), None)
        if clients is not None:
            await clients.aclose()
