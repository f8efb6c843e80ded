"""The upload limit shared through Redis by every web process."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

import pytest

from headshots.web.limits import LimitsUnavailable, SharedRateLimiter, upload_limiter
from headshots.web.security import RateLimited, RateLimiter
from tests.support import make_settings

pytestmark = pytest.mark.redis


def test_two_processes_allow_the_limit_once_in_total(redis_url: str) -> None:
    key = secrets.token_bytes(32)
    first, second = SharedRateLimiter(redis_url, 3, key), SharedRateLimiter(redis_url, 3, key)
    first.take("198.51.100.7")
    second.take("198.51.100.7")
    first.take("198.51.100.7")
    with pytest.raises(RateLimited) as refused:
        second.take("198.51.100.7")
    # One upload comes back every 20 minutes.
    assert 1100 <= int(refused.value.headers["Retry-After"]) <= 1200
    first.take("203.0.113.9")  # another client is not affected


def test_racing_uploads_never_spend_more_than_the_limit(redis_url: str) -> None:
    key = secrets.token_bytes(32)
    limiters = [SharedRateLimiter(redis_url, 5, key) for _ in range(2)]
    allowed: list[int] = []

    def upload(index: int) -> None:
        try:
            limiters[index % 2].take("198.51.100.7")
            allowed.append(index)
        except RateLimited:
            pass

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 5


def test_redis_holds_no_address(redis_url: str) -> None:
    import redis

    SharedRateLimiter(redis_url, 3, secrets.token_bytes(32)).take("198.51.100.7")
    names = [name.decode() for name in redis.Redis.from_url(redis_url).keys("*")]
    assert names and not any("198.51.100.7" in name for name in names)


def test_an_unreachable_redis_refuses_with_a_503() -> None:
    limiter = SharedRateLimiter("redis://127.0.0.1:1/0", 3, secrets.token_bytes(32))
    with pytest.raises(LimitsUnavailable) as refused:
        limiter.take("198.51.100.7")
    assert refused.value.status_code == 503


def test_the_queue_picks_where_the_limit_is_counted(tmp_path: Path, redis_url: str) -> None:
    embedded = upload_limiter(make_settings(tmp_path, None))
    assert isinstance(embedded, RateLimiter)
    shared = upload_limiter(make_settings(tmp_path, None, queue_url=redis_url))
    assert isinstance(shared, SharedRateLimiter)
