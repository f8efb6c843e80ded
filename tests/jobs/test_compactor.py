"""The compactor makes final PNGs only when no job is making or checking images.

A store that is down when a PNG is due delays it (tests/jobs/test_store_outage.py).
"""

from __future__ import annotations

import threading
import time

from headshots.jobs.compactor import Compactor


def test_it_waits_for_busy_jobs_then_works() -> None:
    done: list[int] = []
    finished = threading.Event()

    def work(item: int) -> None:
        done.append(item)
        if len(done) == 2:
            finished.set()

    compactor: Compactor[int] = Compactor(work, patience=30)
    try:
        with compactor.busy():
            compactor.add(1)
            compactor.add(2)
            time.sleep(0.3)
            assert done == []  # a job is still checking images
        assert finished.wait(5)
        assert done == [1, 2]
    finally:
        compactor.stop()


def test_a_busy_process_still_gets_its_pngs_after_the_patience() -> None:
    done = threading.Event()
    compactor: Compactor[str] = Compactor(lambda item: done.set(), patience=0.2)
    try:
        with compactor.busy():
            compactor.add("image")
            assert done.wait(5)  # not starved by a job that never ends
    finally:
        compactor.stop()


def test_a_failing_item_does_not_stop_the_others() -> None:
    done: list[int] = []

    def work(item: int) -> None:
        if item == 1:
            raise OSError("disk gone")
        done.append(item)

    compactor: Compactor[int] = Compactor(work)
    try:
        compactor.add(1)
        compactor.add(2)
        deadline = time.monotonic() + 5
        while not done and time.monotonic() < deadline:
            time.sleep(0.02)
        assert done == [2]
    finally:
        compactor.stop()


def test_a_job_waiting_on_a_remote_engine_lets_pngs_be_made() -> None:
    done = threading.Event()
    compactor: Compactor[str] = Compactor(lambda item: done.set(), patience=30)
    try:
        with compactor.busy():
            compactor.add("image")
            assert not done.wait(0.3)
            with compactor.idle():
                assert done.wait(5)
    finally:
        compactor.stop()


def test_an_image_whose_store_is_down_is_tried_again_later() -> None:
    tries: list[int] = []
    done = threading.Event()

    def work(item: int) -> None:
        tries.append(item)
        if len(tries) < 3:
            raise ConnectionError("store down")
        done.set()

    compactor: Compactor[int] = Compactor(work, retry_on=(ConnectionError,))
    try:
        compactor.add(7)
        assert done.wait(10)  # two waits: 0.5 s, then 1 s
        assert tries == [7, 7, 7]
    finally:
        compactor.stop()
