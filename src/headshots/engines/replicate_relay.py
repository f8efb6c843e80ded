"""Webhooks across processes: the web process tells the workers a prediction ended.

With ``HEADSHOTS_QUEUE_URL=redis://...`` the predictions are awaited in
``headshots worker`` processes, while Replicate's webhooks reach the web
process. Without a relay, a worker would learn of the result only at its
next fallback poll (every 10 s with webhooks on). The web process publishes
the id of each verified completed prediction nobody awaits locally on a
Redis channel; every worker listens and wakes its waiter, which then reads
the prediction from the API. Only the id crosses Redis: the API, not the
relay, says what happened.
"""

from __future__ import annotations

import logging
import re
import threading

import redis

from headshots.engines.replicate_webhooks import WAITERS, Waiters

log = logging.getLogger(__name__)

CHANNEL = "headshots:replicate:completed"
# Replicate's prediction ids are short lowercase alphanumerics; anything
# else on the channel is not ours and is ignored.
PREDICTION_ID = re.compile(r"[a-z0-9]{8,64}")


class CompletionRelay:
    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)

    def publish(self, prediction_id: str) -> None:
        """Tell every worker; a relay that is down only costs them a poll."""
        try:
            self._client.publish(CHANNEL, prediction_id)
        except redis.RedisError as error:
            log.warning("could not relay a replicate webhook: %s", type(error).__name__)

    def listen(self, waiters: Waiters = WAITERS) -> threading.Event:
        """Wake this process's waiters for every id published, until the event returned is set."""
        stop = threading.Event()
        threading.Thread(
            target=self._listen, args=(waiters, stop), name="replicate-relay", daemon=True
        ).start()
        return stop

    def _listen(self, waiters: Waiters, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                while not stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    data = message.get("data") if message else None
                    if isinstance(data, bytes):
                        prediction_id = data.decode("ascii", "replace")
                        if PREDICTION_ID.fullmatch(prediction_id):
                            waiters.poke(prediction_id)
                pubsub.close()
            except redis.RedisError as error:
                # Redis restarted or the network blinked: polling covers the
                # gap, and the relay comes back.
                log.warning("replicate relay lost Redis (%s); retrying", type(error).__name__)
                stop.wait(2.0)
