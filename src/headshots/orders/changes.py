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

A shred is the change every process must act on: :class:`OrderShreds`
stops this process's jobs on the order, drops its decrypted selfie, and
tells the other processes to do the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from headshots.channel import Channel
from headshots.orders.ids import ORDER_ID
from headshots.orders.selfies import SelfieCache
from headshots.storage.vault import EncryptedBlobs

log = logging.getLogger(__name__)

CHANGES_CHANNEL = "headshots:orders:changed"
SHREDDED_CHANNEL = "headshots:orders:shredded"
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


class OrderShreds:
    """The jobs of this process on each order, stopped the moment the order is shredded.

    A job registers while it works (:meth:`working_on`) and checks its stop
    signal between steps. A shred committed here stops and waits for them;
    one committed in another process arrives on the channel (Redis in
    scale-out) and stops them too. Either way the order's decrypted selfie
    leaves this process's memory at once.
    """

    def __init__(
        self, blobs: EncryptedBlobs, selfies: SelfieCache, channel: Channel | None = None
    ) -> None:
        self._blobs = blobs
        self._selfies = selfies
        self._channel = channel
        self._lock = threading.Lock()
        self._working: dict[str, set[threading.Event]] = {}

    @contextlib.contextmanager
    def working_on(self, order_id: str) -> Iterator[threading.Event]:
        """A job's stop signal, set the moment its order is shredded anywhere."""
        stop = threading.Event()
        with self._lock:
            self._working.setdefault(order_id, set()).add(stop)
        try:
            yield stop
        finally:
            with self._lock:
                events = self._working.get(order_id, set())
                events.discard(stop)
                if not events:
                    self._working.pop(order_id, None)

    def working(self) -> set[str]:
        """The orders a job of this process works on now."""
        with self._lock:
            return set(self._working)

    def shredded(self, order_ids: Iterable[str]) -> None:
        """Call after an order's shred committed: every process lets go of it now.

        This process's own jobs on the order are stopped and waited for
        (briefly: they stop at their next step), then whatever one of them
        wrote after the blobs were deleted is deleted too. So when a DELETE
        answers in the embedded mode, no file of the order is left; jobs in
        other processes do the same on their side when told.
        """
        ids = list(order_ids)
        for order_id in ids:
            self.forget(order_id)
            if self._channel is not None:
                self._channel.publish(order_id)
        for order_id in ids:
            # Also when no job is left: one may have written between the
            # blobs' deletion and the shred's commit, and it saw a live order.
            self._let_go(order_id)
            try:
                self._blobs.shred(order_id)
            except Exception as error:  # the sweep deletes late writes again
                log.warning("late writes of an order not deleted: %s", type(error).__name__)

    def forget(self, order_id: str) -> None:
        """Drop this process's copy of the order's selfie and stop its jobs."""
        self._selfies.forget(order_id)
        with self._lock:
            for stop in self._working.get(order_id, ()):
                stop.set()

    def listen(self) -> threading.Event | None:
        """In scale-out, forget every order shredded by another process; None if embedded."""
        return self._channel.listen(self.forget) if self._channel is not None else None

    def _let_go(self, order_id: str, timeout: float = 5.0) -> None:
        """Wait (briefly) until no job of this process works on the order."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if order_id not in self._working:
                    return
            time.sleep(0.01)
