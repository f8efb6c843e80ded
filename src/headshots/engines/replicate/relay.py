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

import re
import threading

from headshots.channel import Channel
from headshots.engines.replicate.webhooks import WAITERS, Waiters

CHANNEL = "headshots:replicate:completed"
# Replicate's prediction ids are short lowercase alphanumerics; anything
# else on the channel is not ours and is ignored.
PREDICTION_ID = re.compile(r"[a-z0-9]{8,64}")


class CompletionRelay:
    def __init__(self, url: str) -> None:
        self._channel = Channel(url, CHANNEL, accept=PREDICTION_ID)

    def publish(self, prediction_id: str) -> None:
        """Tell every worker; a relay that is down only costs them a poll."""
        self._channel.publish(prediction_id)

    def listen(self, waiters: Waiters = WAITERS) -> threading.Event:
        """Wake this process's waiters for every id published, until the event returned is set."""
        return self._channel.listen(waiters.poke)
