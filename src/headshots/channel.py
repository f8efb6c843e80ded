"""A Redis pub/sub channel that every process of a deployment listens to.

Only short ids cross it, never data of a person: the database says what
happened, the channel only says to look now. A listener that loses Redis
reconnects; what it missed meanwhile is covered by each user's fallback
(a poll, a lease, a timed eviction).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import redis

log = logging.getLogger(__name__)


class Channel:
    def __init__(self, url: str, name: str, *, accept: re.Pattern[str]) -> None:
        self.name = name
        self._accept = accept
        self._client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)

    def publish(self, message: str) -> None:
        """Tell every listener; a channel that is down only delays them."""
        try:
            self._client.publish(self.name, message)
        except redis.RedisError as error:
            log.warning("could not publish on %s: %s", self.name, type(error).__name__)

    def listen(self, handle: Callable[[str], Any]) -> threading.Event:
        """Call ``handle`` for every accepted message, until the event returned is set."""
        stop = threading.Event()
        threading.Thread(
            target=self._listen, args=(handle, stop), name=f"listen-{self.name}", daemon=True
        ).start()
        return stop

    def _listen(self, handle: Callable[[str], Any], stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.name)
                while not stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    data = message.get("data") if message else None
                    if isinstance(data, bytes):
                        text = data.decode("ascii", "replace")
                        if self._accept.fullmatch(text):
                            handle(text)
                pubsub.close()
            except redis.RedisError as error:
                log.warning("lost Redis on %s (%s); retrying", self.name, type(error).__name__)
                stop.wait(2.0)
