"""Whoever watches an order learns at once that it changed.

A job announces every change it commits (a preview stored, a variation
done); the order page's event stream waits for an announcement instead of
reading the order on a timer, so a preview shows the moment it is stored.
In scale-out the announcement crosses processes over Redis, as shreds do:
the order id only, never data of a person. One that is lost costs its
watcher a short fallback poll, nothing else.

A watcher gathers a burst of changes into one read, except the change its
page waits for (the order ready, or paid): that one is said to be final and
read at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from headshots.channel import Channel
from headshots.orders.ids import ORDER_ID

CHANGES_CHANNEL = "headshots:orders:changed"
_FINAL = ":final"
# What crosses the channel: an order id, tagged when the change is final.
MESSAGE = re.compile(f"(?:{ORDER_ID.pattern})(?:{_FINAL})?")


@dataclass(frozen=True, eq=False)
class Watch:
    """What one watcher of an order is told."""

    # Set at every change; cleared by the watcher before it reads the order.
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    # Set once a change the page waits for committed: the order is ready, or paid.
    final: asyncio.Event = field(default_factory=asyncio.Event)


_Watcher = tuple[asyncio.AbstractEventLoop, Watch]


class OrderChanges:
    def __init__(self, channel: Channel | None = None) -> None:
        self._channel = channel
        self._lock = threading.Lock()
        self._watchers: dict[str, set[_Watcher]] = {}

    def announce(self, order_id: str, *, final: bool = False) -> None:
        """Call after a change to the order committed, from any thread.

        ``final``: the change made the order ready, or paid.
        """
        self.wake(order_id, final=final)
        if self._channel is not None:
            self._channel.publish(order_id + _FINAL if final else order_id)

    def wake(self, order_id: str, *, final: bool = False) -> None:
        """Wake this process's watchers of the order."""
        with self._lock:
            watchers = list(self._watchers.get(order_id, ()))
        for loop, watch in watchers:
            with contextlib.suppress(RuntimeError):  # its loop has just closed
                if final:
                    loop.call_soon_threadsafe(watch.final.set)
                loop.call_soon_threadsafe(watch.changed.set)

    @contextlib.contextmanager
    def watching(self, order_id: str) -> Iterator[Watch]:
        """The order's changes while the block runs.

        Clear ``changed`` before reading the order: a change committed after
        the read sets it again, so none is missed between a read and the
        next wait.
        """
        watcher = (asyncio.get_running_loop(), Watch())
        with self._lock:
            self._watchers.setdefault(order_id, set()).add(watcher)
        try:
            yield watcher[1]
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
        return self._channel.listen(self._heard) if self._channel is not None else None

    def _heard(self, message: str) -> None:
        order_id, tag, _ = message.partition(_FINAL)
        self.wake(order_id, final=bool(tag))


async def changed(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds; whether it was set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
    return event.is_set()
