"""The upload rate limit shared by every web process, counted in Redis.

With several web processes (on one machine or many) a counter in each
process would let a client upload the limit once per process. When the
queue is Redis, the same token bucket as :class:`~headshots.web.security.
RateLimiter` lives in Redis instead, updated by one Lua script so two
processes can never both spend the last upload. Redis's own clock is used,
so the machines' clocks need not agree.

Clients are keyed by an HMAC of their address under a key derived from the
master key: Redis never holds an IP address, and every process (sharing the
master key) computes the same name.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from headshots.config import Settings
from headshots.errors import HeadshotsError
from headshots.web.security import RateLimited, RateLimiter, UploadLimiter

LIMIT_KEY_LABEL = b"headshots/rate-limit/v1"

# KEYS[1]: the client's bucket; ARGV: capacity, refill per second.
# Returns the tokens left times 1000 (negative: refused, that many missing).
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local taken = tokens >= 1
if taken then tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
-- A bucket that has refilled holds no information: let Redis forget it.
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
if taken then return math.floor(tokens * 1000) end
return -math.ceil((1 - tokens) * 1000)
"""


class LimitsUnavailable(HeadshotsError):
    status_code = 503
    code = "limits_unavailable"
    message = "The service cannot take uploads for a moment; try again in a minute."


class SharedRateLimiter:
    """A token bucket per client in Redis: N web processes allow the limit once."""

    def __init__(self, url: str, per_hour: int, key: bytes) -> None:
        import redis

        # Bounded waits: a stuck Redis must refuse an upload, not hold it.
        self._redis: Any = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._take = self._redis.register_script(_TAKE)
        self._key = key
        self.capacity = float(per_hour)
        self.refill_per_second = per_hour / 3600.0

    def take(self, client: str) -> None:
        import redis

        name = (
            "headshots:uploads:" + hmac.new(self._key, client.encode(), hashlib.sha256).hexdigest()
        )
        try:
            left = int(self._take(keys=[name], args=[self.capacity, self.refill_per_second]))
        except redis.RedisError as error:
            raise LimitsUnavailable() from error
        if left < 0:
            raise RateLimited(retry_after=(-left / 1000) / self.refill_per_second)


def upload_limiter(settings: Settings) -> UploadLimiter:
    """Counted in Redis when the queue is Redis, otherwise in this process."""
    url = settings.queue_url or ""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from headshots.storage.keys import load_master_key

        key = hmac.new(load_master_key(settings), LIMIT_KEY_LABEL, hashlib.sha256).digest()
        return SharedRateLimiter(url, settings.upload_rate_per_hour, key)
    return RateLimiter(settings.upload_rate_per_hour)
