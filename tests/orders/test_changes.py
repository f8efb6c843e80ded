"""Order pages hear of a change the moment it is committed, here or in another process."""

from __future__ import annotations

import asyncio
import threading
import time

from headshots.channel import Channel
from headshots.orders.changes import CHANGES_CHANNEL, MESSAGE, OrderChanges, changed

ORDER = "o" * 22


def test_an_announcement_from_a_job_thread_wakes_the_watcher() -> None:
    changes = OrderChanges()

    async def watch() -> tuple[bool, bool]:
        with changes.watching(ORDER) as watch:
            quiet = await changed(watch.changed, 0.2)
            threading.Timer(0.1, changes.announce, [ORDER]).start()
            woken = await changed(watch.changed, 30)
            assert not watch.final.is_set()
        return quiet, woken

    assert asyncio.run(watch()) == (False, True)
    assert changes.watched() == 0  # a closed stream leaves nothing behind


def test_another_orders_change_does_not_wake_the_watcher() -> None:
    changes = OrderChanges()

    async def watch() -> bool:
        with changes.watching(ORDER) as watch:
            changes.announce("p" * 22, final=True)
            return await changed(watch.changed, 0.2) or watch.final.is_set()

    assert asyncio.run(watch()) is False


def test_a_change_made_by_a_worker_elsewhere_wakes_a_web_process(redis_url: str) -> None:
    web = OrderChanges(Channel(redis_url, CHANGES_CHANNEL, accept=MESSAGE))
    worker = OrderChanges(Channel(redis_url, CHANGES_CHANNEL, accept=MESSAGE))
    listening = web.listen()
    assert listening is not None

    async def watch() -> tuple[bool, bool, bool]:
        with web.watching(ORDER) as seen:
            # Announce until the listener has subscribed (a message before
            # that is lost, which the page's fallback poll covers).
            woken = False
            deadline = time.monotonic() + 30
            while not woken and time.monotonic() < deadline:
                worker.announce(ORDER)
                woken = await changed(seen.changed, 0.2)
            plain_was_final = seen.final.is_set()
            # The order's last change crosses as final: the page reads it at once.
            worker.announce(ORDER, final=True)
            final = await changed(seen.final, 30)
        return woken, plain_was_final, final

    try:
        assert asyncio.run(watch()) == (True, False, True)
    finally:
        listening.set()


def test_only_order_ids_cross_the_channel() -> None:
    assert MESSAGE.fullmatch(ORDER) and MESSAGE.fullmatch(ORDER + ":final")
    assert not MESSAGE.fullmatch(ORDER + ":ready")
    assert not MESSAGE.fullmatch("me.jpg")
