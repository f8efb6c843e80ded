"""Identity scores of many outputs at once, in worker processes.

dlib holds the GIL while it finds a face and its landmarks, and the
descriptor's matrix products are best left one thread each, so the checks
of an order's 24 outputs are spread over a pool of processes, one per core.
Only pixels shrunk to the size the scorer works at (an output's, and once
per order the selfie's, for its own descriptor) and the selfie's 128
numbers cross to a child; the children keep nothing between calls and die
with the pool.

The children run at a lower priority than the server: where both want the
cores (an order's outputs landing together), the previews a person waits to
see come first, and the checks take what is left.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from headshots.imaging.face_net import openblas_env
from headshots.imaging.faces import Box
from headshots.imaging.identity import (
    FaceDescriptor,
    IdentityScore,
    Pixels,
    describe_all,
    only_face,
    score,
    working_pixels,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# How often a scoring child looks whether its parent is still there.
PARENT_CHECK_SECONDS = 1.0
# Added to a scoring child's niceness (see the module docstring).
CHILD_NICENESS = 5


class ScorePool:
    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(
        self, reference: FaceDescriptor, image: Image.Image, threshold: float
    ) -> Future[IdentityScore | None]:
        """identity.score in a worker process; its future."""
        return self._submit(_score, reference.vector, working_pixels(image), threshold)

    def describe(self, image: Image.Image) -> FaceDescriptor:
        """identity.describe in a worker process, waited for.

        The selfie's own descriptor: its network runs with the scoring
        processes' tuned BLAS (imaging.face_net), several times faster than
        in this process, and outside its GIL.
        """
        pixels = working_pixels(image)
        try:
            found: list[FaceDescriptor] = self._submit(describe_all, pixels).result()
        except BrokenProcessPool:
            # A child died on it (out of memory, killed): the order's checks
            # need the reference more than they need it found elsewhere.
            log.warning("identity scoring pool broke; the selfie's face is found here")
            found = describe_all(pixels)
        return only_face(found)

    def warm(self) -> None:
        """Start the children and load their models now, not at the first order."""
        pool = self._executor()
        for waiting in [pool.submit(_warm) for _ in range(self.processes)]:
            waiting.result()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _submit(self, work: Callable[..., _T], *args: object) -> Future[_T]:
        try:
            return self._executor().submit(work, *args)
        except BrokenProcessPool:
            # A child died (out of memory, killed): start afresh.
            log.warning("identity scoring pool broke; starting a new one")
            with self._lock:
                self._pool = None
            return self._executor().submit(work, *args)

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # The children inherit this process's environment, and read
                # these when their numpy loads (this process's has loaded).
                os.environ.update(openblas_env())
                # spawn, not fork: the parent runs threads (and a server).
                self._pool = ProcessPoolExecutor(
                    max_workers=self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_child,
                    initargs=(os.getpid(),),
                )
            return self._pool


def default_processes() -> int:
    return os.cpu_count() or 1


_shared: dict[int, ScorePool] = {}
_shared_lock = threading.Lock()


def shared_pool(processes: int) -> ScorePool:
    """One pool per process and size: its children keep nothing, so runtimes share it."""
    with _shared_lock:
        if processes not in _shared:
            _shared[processes] = ScorePool(processes)
            atexit.register(_shared[processes].close)
        return _shared[processes]


def _start_child(parent: int) -> None:
    os.nice(CHILD_NICENESS)
    _follow_parent(parent)


def _follow_parent(parent: int) -> None:
    """In a child: exit when the process that started it is gone.

    A server stopped by a signal, or killed, does not always get to shut its
    pool down, and each orphaned child kept about 200 MB for good.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def _score(
    vector: npt.NDArray[np.float64], pixels: Pixels, threshold: float
) -> IdentityScore | None:
    reference = FaceDescriptor(vector=vector, box=Box(0.0, 0.0, 0.0, 0.0))
    return score(reference, pixels, threshold)


def _warm() -> None:
    blank = np.zeros((64, 64, 3), dtype=np.uint8)
    score(FaceDescriptor(vector=np.zeros(128), box=Box(0.0, 0.0, 0.0, 0.0)), blank, 0.6)
