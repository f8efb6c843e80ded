"""Order pages hear of a change the moment it is committed, here or in another process."""

from __future__ import annotations

import asyncio
import threading
import time

from headshots.channel import Channel
from headshots.orders.changes import CHANGES_CHANNEL, OrderChanges, changed
from headshots.runtime import _ORDER_ID

ORDER = "o" * 22


def test_an_announcement_from_a_job_thread_wakes_the_watcher() -> None:
    changes = OrderChanges()

    async def watch() -> tuple[bool, bool]:
        with changes.watching(ORDER) as announced:
            quiet = await changed(announced, 0.2)
            threading.Timer(0.1, changes.announce, [ORDER]).start()
            woken = await changed(announced, 30)
        return quiet, woken

    assert asyncio.run(watch()) == (False, True)
    assert changes.watched() == 0  # a closed stream leaves nothing behind


def test_another_orders_change_does_not_wake_the_watcher() -> None:
    changes = OrderChanges()

    async def watch() -> bool:
        with changes.watching(ORDER) as announced:
            changes.announce("p" * 22)
            return await changed(announced, 0.2)

    assert asyncio.run(watch()) is False


def test_a_change_made_by_a_worker_elsewhere_wakes_a_web_process(redis_url: str) -> None:
    web = OrderChanges(Channel(redis_url, CHANGES_CHANNEL, accept=_ORDER_ID))
    worker = OrderChanges(Channel(redis_url, CHANGES_CHANNEL, accept=_ORDER_ID))
    listening = web.listen()
    assert listening is not None

    async def watch() -> bool:
        with web.watching(ORDER) as announced:
            # Announce until the listener has subscribed (a message before
            # that is lost, which the page's fallback poll covers).
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                worker.announce(ORDER)
                if await changed(announced, 0.2):
                    return True
            return False

    try:
        assert asyncio.run(watch())
    finally:
        listening.set()
