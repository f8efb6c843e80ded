"""Whoever watches an order learns at once that it changed.

A job announces every change it commits (a preview stored, a variation
done); the order page's event stream waits for an announcement instead of
reading the order on a timer, so a preview shows the moment it is stored.
In scale-out the announcement crosses processes over Redis, as shreds do:
the order id only, never data of a person. One that is lost costs its
watcher a short fallback poll, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from headshots.channel import Channel

CHANGES_CHANNEL = "headshots:orders:changed"

_Watcher = tuple[asyncio.AbstractEventLoop, asyncio.Event]


class OrderChanges:
    def __init__(self, channel: Channel | None = None) -> None:
        self._channel = channel
        self._lock = threading.Lock()
        self._watchers: dict[str, set[_Watcher]] = {}

    def announce(self, order_id: str) -> None:
        """Call after a change to the order committed, from any thread."""
        self.wake(order_id)
        if self._channel is not None:
            self._channel.publish(order_id)

    def wake(self, order_id: str) -> None:
        """Wake this process's watchers of the order."""
        with self._lock:
            watchers = list(self._watchers.get(order_id, ()))
        for loop, event in watchers:
            with contextlib.suppress(RuntimeError):  # its loop has just closed
                loop.call_soon_threadsafe(event.set)

    @contextlib.contextmanager
    def watching(self, order_id: str) -> Iterator[asyncio.Event]:
        """An event set at every change of the order while the block runs.

        Clear it before reading the order: a change committed after the read
        sets it again, so none is missed between a read and the next wait.
        """
        event = asyncio.Event()
        watcher = (asyncio.get_running_loop(), event)
        with self._lock:
            self._watchers.setdefault(order_id, set()).add(watcher)
        try:
            yield event
        finally:
            with self._lock:
                watchers = self._watchers.get(order_id, set())
                watchers.discard(watcher)
                if not watchers:
                    self._watchers.pop(order_id, None)

    def watched(self) -> int:
        """How many orders this process has watchers for."""
        with self._lock:
            return len(self._watchers)

    def listen(self) -> threading.Event | None:
        """In scale-out, wake watchers here at changes made anywhere; None if embedded."""
        return self._channel.listen(self.wake) if self._channel is not None else None


async def changed(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds; whether it was set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
    return event.is_set()
