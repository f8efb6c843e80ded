"""Engines for load benchmarks, loaded by `headshots serve` as `bench.engines:Name`.

They are the test suite's instant engine with a fixed delay: the order
service, queue, storage, watermark and identity check all run for real.
"""

from __future__ import annotations

from typing import ClassVar

from tests.support import InstantEngine


class Instant(InstantEngine):
    delay: ClassVar[float] = 0.0


class SleepTwoSeconds(InstantEngine):
    delay: ClassVar[float] = 2.0
