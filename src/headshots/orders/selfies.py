"""The decrypted, analysed selfies of the orders a process is working on.

A person's pixels stay in memory only while their order is being made: an
entry expires a short while after its last use, also when nothing else
happens (a timer thread evicts it), and goes at once when its order is
shredded. The styles of one order share one entry, so the selfie is
decrypted, decoded and analysed once per process, not once per style.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from headshots.imaging.selfie import PreparedSelfie

Loader = Callable[[], PreparedSelfie]


class SelfieCache:
    def __init__(self, *, ttl_seconds: float = 120.0, slots: int = 8) -> None:
        self.ttl_seconds = ttl_seconds
        self.slots = slots
        # order id -> (monotonic time of expiry, selfie); least recent first.
        self._entries: OrderedDict[str, tuple[float, PreparedSelfie]] = OrderedDict()
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closed = False
        self._reaper: threading.Thread | None = None

    def __contains__(self, order_id: object) -> bool:
        with self._lock:
            return order_id in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, order_id: str, load: Loader) -> PreparedSelfie:
        """The order's selfie, loaded by ``load`` only if no one has it yet."""
        with self._lock:
            found = self._touch(order_id)
            if found is not None:
                return found
            # One loader per order: its styles start together, and only the
            # first should decrypt and analyse the selfie.
            loading = self._loading.setdefault(order_id, threading.Lock())
        with loading:
            with self._lock:
                found = self._touch(order_id)
                if found is not None:
                    return found
            try:
                selfie = load()
                self.put(order_id, selfie)
            finally:
                with self._lock:
                    self._loading.pop(order_id, None)
        return selfie

    def put(self, order_id: str, selfie: PreparedSelfie) -> None:
        with self._lock:
            self._entries[order_id] = (time.monotonic() + self.ttl_seconds, selfie)
            self._entries.move_to_end(order_id)
            while len(self._entries) > self.slots:
                self._entries.popitem(last=False)
            self._start_reaper()
            self._changed.notify_all()

    def forget(self, order_id: str) -> None:
        with self._lock:
            self._entries.pop(order_id, None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._entries.clear()
            self._changed.notify_all()

    def _touch(self, order_id: str) -> PreparedSelfie | None:
        entry = self._entries.get(order_id)
        if entry is None:
            return None
        self._entries[order_id] = (time.monotonic() + self.ttl_seconds, entry[1])
        self._entries.move_to_end(order_id)
        return entry[1]

    def _start_reaper(self) -> None:
        if self._reaper is None or not self._reaper.is_alive():
            self._reaper = threading.Thread(target=self._reap, name="selfie-cache", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        with self._lock:
            while not self._closed:
                now = time.monotonic()
                for order_id in [k for k, (until, _) in self._entries.items() if until <= now]:
                    del self._entries[order_id]
                if not self._entries:
                    self._changed.wait()
                    continue
                soonest = min(until for until, _ in self._entries.values())
                self._changed.wait(max(0.05, soonest - now))
