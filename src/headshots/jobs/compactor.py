"""Final PNGs made off the path a person waits on.

A variation is done once its image is final and checked; until its PNG is
stored, its image sits in the store as raw pixels (and a download encodes
and signs them on the spot). Encoding and signing a PNG costs about 90 ms of
CPU an image, which is what the checks of the images still arriving need.
So one thread per process makes the PNGs, one at a time, and waits while
any job of the process is still making or checking images (a job that only
waits on a hosted engine's calls is not), though never longer than
``patience`` seconds for any one image, so a busy process still gets its
PNGs made.

A store that is down for a while (``retry_on``: the caller says which errors
mean that) is not a reason to leave raw pixels for good: the image is tried
again later, each wait twice the last, up to RETRY_LONGEST_SECONDS, for as
long as RETRY_FOR_SECONDS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")

RETRY_FIRST_SECONDS = 0.5
RETRY_LONGEST_SECONDS = 30.0
# Past this, the outage is an operator's to fix; downloads still make each
# PNG from the raw pixels on the spot.
RETRY_FOR_SECONDS = 3600.0


@dataclass(eq=False)  # removed by identity
class _Entry(Generic[Item]):
    item: Item
    # When it may be tried (monotonic): when added, or its retry's time.
    due: float
    retries: int = 0
    failing_since: float | None = None


class Compactor(Generic[Item]):
    def __init__(
        self,
        work: Callable[[Item], None],
        *,
        patience: float = 10.0,
        retry_on: tuple[type[Exception], ...] = (),
    ) -> None:
        self._work = work
        self.patience = patience
        self._retry_on = retry_on
        self._items: list[_Entry[Item]] = []
        self._busy = 0
        self._changed = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def add(self, item: Item) -> None:
        self._queue(_Entry(item, due=time.monotonic()))

    def _queue(self, entry: _Entry[Item]) -> None:
        with self._changed:
            self._items.append(entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="compactor", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Held by a job while it makes or checks images: PNGs wait for it."""
        self._count(+1)
        try:
            yield
        finally:
            self._count(-1)

    @contextmanager
    def idle(self) -> Iterator[None]:
        """Inside busy(): a job only waiting on a remote engine lets PNGs be made meanwhile.

        A hosted engine's calls take seconds and no CPU here; without this,
        under steady load each order's PNGs waited out their patience and
        landed on the next order's images as they arrived.
        """
        self._count(-1)
        try:
            yield
        finally:
            self._count(+1)

    def _count(self, change: int) -> None:
        with self._changed:
            self._busy += change
            self._changed.notify_all()

    def stop(self) -> None:
        """Stop after the image in hand; the rest stay raw pixels, which still serve."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._changed:
                entry = self._next()
                while not self._stopped and entry is None:
                    self._changed.wait(self._wait_seconds())
                    entry = self._next()
                if self._stopped or entry is None:
                    return
                self._items.remove(entry)
            try:
                self._work(entry.item)
            except self._retry_on as error:
                self._again(entry, error)
            except Exception as error:  # the raw pixels stay and still serve
                log.warning("a final PNG was not stored: %s", type(error).__name__)

    def _again(self, entry: _Entry[Item], error: Exception) -> None:
        now = time.monotonic()
        since = entry.failing_since if entry.failing_since is not None else now
        if now - since >= RETRY_FOR_SECONDS:
            log.warning("a final PNG was not stored, given up: %s", type(error).__name__)
            return
        wait = min(RETRY_LONGEST_SECONDS, RETRY_FIRST_SECONDS * 2**entry.retries)
        log.warning("a final PNG waits %.1f s for the store: %s", wait, type(error).__name__)
        self._queue(_Entry(entry.item, now + wait, entry.retries + 1, since))

    def _next(self) -> _Entry[Item] | None:
        """The first image that is due and may be made now (no job busy, or waited enough)."""
        now = time.monotonic()
        for entry in self._items:
            if entry.due <= now and (self._busy == 0 or now - entry.due >= self.patience):
                return entry
        return None

    def _wait_seconds(self) -> float | None:
        if not self._items:
            return None
        wait = 0.0 if self._busy == 0 else self.patience
        return max(0.01, min(entry.due for entry in self._items) + wait - time.monotonic())
