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
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")


class Compactor(Generic[Item]):
    def __init__(self, work: Callable[[Item], None], *, patience: float = 10.0) -> None:
        self._work = work
        self.patience = patience
        self._items: deque[tuple[float, Item]] = deque()
        self._busy = 0
        self._changed = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def add(self, item: Item) -> None:
        with self._changed:
            self._items.append((time.monotonic(), item))
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
                while not self._stopped and not self._ready():
                    self._changed.wait(self._wait_seconds())
                if self._stopped:
                    return
                _, item = self._items.popleft()
            try:
                self._work(item)
            except Exception as error:  # the raw pixels stay and still serve
                log.warning("a final PNG was not stored: %s", type(error).__name__)

    def _ready(self) -> bool:
        if not self._items:
            return False
        added, _ = self._items[0]
        return self._busy == 0 or time.monotonic() - added >= self.patience

    def _wait_seconds(self) -> float | None:
        if not self._items:
            return None
        added, _ = self._items[0]
        return max(0.01, added + self.patience - time.monotonic())
