"""A process's heartbeat: one thread that says it is alive, every few seconds.

Other processes release the leases of a process whose heartbeat lapsed
(orders.processes), so the beat must not wait behind any job: it has a
thread of its own, and a failed beat (the database away for a moment) is
tried again at the next one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, beat: Callable[[], Any], *, every: float) -> None:
        self._beat = beat
        self.every = every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            try:
                self._beat()
            except Exception as error:
                log.warning("heartbeat failed: %s", type(error).__name__)
            if self._stopped.wait(self.every):
                return
