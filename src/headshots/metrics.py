"""Metrics for operators, in the Prometheus text format.

Two kinds, so the numbers stay right with any number of processes:

- What the database knows (orders by tier and state, variations by engine
  and status, the queue's depth and oldest waiting variation, shreds done
  and pending) is counted at scrape time from PostgreSQL: every process
  answers the same, whichever one Prometheus asks.
- What happens inside a process (engine calls and their latency, provider
  cost per call and per finished order, refusals, store outages) is counted
  where it happens (an order's cost where it became ready). With several
  processes on one machine, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
  folder shared by them before they start, and any of them reports the sum;
  a worker on another machine serves its own on ``HEADSHOTS_METRICS_PORT``.

No label carries an order id or anything of a person: only engine names,
tiers, states and error codes, each a short fixed list.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from headshots.orders.models import Order, OrderStatus, Variation, VariationStatus, utcnow
from headshots.orders.shredding import PendingShred

if TYPE_CHECKING:
    from headshots.config import Settings
    from headshots.engines.base import Outcome
    from headshots.runtime import Runtime

CONTENT_TYPE = CONTENT_TYPE_LATEST

ENGINE_SECONDS = Histogram(
    "headshots_engine_call_seconds",
    "Time of one engine call (one variation), by engine and outcome.",
    ["engine", "outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300),
)
PROVIDER_COST = Counter(
    "headshots_provider_cost_usd",
    "What the engine's provider charged, in US dollars (0 for local engines).",
    ["engine"],
)
# What one order cost at its provider, observed once, when it is ready: the
# sum over its variations of every call's price, re-rolls included.
ORDER_COST = Histogram(
    "headshots_order_cost_usd",
    "What the provider charged for one order (every call of its variations, re-rolls "
    "too), in US dollars, observed when the order is ready; by engine and tier.",
    ["engine", "tier"],
    buckets=(0.0, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8),
)
REFUSALS = Counter(
    "headshots_refusals",
    "Requests refused with an error a person can act on, by error code.",
    ["code"],
)

STORE_UNAVAILABLE = Counter(
    "headshots_store_unavailable",
    "Blob store calls that failed because the store was unavailable, by step "
    "(final_png: retried with backoff; image: the job ends, its work handed out again).",
    ["step"],
)


def engine_call(engine: str, seconds: float, outcome: Outcome) -> None:
    """Count one engine call: its latency, its outcome and what it cost."""
    from headshots.engines.base import Rendered

    result = "rendered" if isinstance(outcome, Rendered) else "failed"
    ENGINE_SECONDS.labels(engine=engine, outcome=result).observe(seconds)
    cost = outcome.details.get("cost_usd") if isinstance(outcome.details, dict) else None
    if isinstance(cost, int | float) and cost > 0:
        PROVIDER_COST.labels(engine=engine).inc(cost)


def order_finished(engine: str, tier: str, cost_usd: float) -> None:
    """Count an order that became ready, with what its provider charged for it."""
    ORDER_COST.labels(engine=engine, tier=tier).observe(cost_usd)


def refused(code: str) -> None:
    REFUSALS.labels(code=code).inc()


def store_unavailable(step: str) -> None:
    STORE_UNAVAILABLE.labels(step=step).inc()


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time, the same from every process."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.runtime.sessions() as session:
            orders = GaugeMetricFamily(
                "headshots_orders", "Orders by tier and state.", labels=["tier", "state"]
            )
            for tier, state, count in session.execute(
                select(Order.tier, Order.status, func.count()).group_by(Order.tier, Order.status)
            ):
                orders.add_metric([tier, state], count)
            yield orders

            variations = GaugeMetricFamily(
                "headshots_variations",
                "Variations of orders not yet shredded, by engine and status.",
                labels=["engine", "status"],
            )
            for engine, status, count in session.execute(
                select(Order.engine, Variation.status, func.count())
                .join(Order)
                .group_by(Order.engine, Variation.status)
            ):
                variations.add_metric([engine, status], count)
            yield variations

            depth, oldest = session.execute(
                select(func.count(), func.min(Variation.enqueued_at))
                .join(Order)
                .where(
                    Variation.status == VariationStatus.PENDING,
                    Order.status == OrderStatus.QUEUED,
                )
            ).one()
            yield GaugeMetricFamily(
                "headshots_queue_depth", "Variations waiting for a worker.", value=depth
            )
            age = 0.0
            if oldest is not None:
                oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=utcnow().tzinfo)
                age = max(0.0, (utcnow() - oldest).total_seconds())
            yield GaugeMetricFamily(
                "headshots_queue_oldest_seconds",
                "How long the longest-waiting variation has waited (0 when none waits).",
                value=age,
            )

            done = GaugeMetricFamily(
                "headshots_shreds_done",
                "Orders shredded, by reason (expired or deleted).",
                labels=["reason"],
            )
            for state, count in session.execute(
                select(Order.status, func.count())
                .where(Order.status.in_([OrderStatus.EXPIRED, OrderStatus.DELETED]))
                .group_by(Order.status)
            ):
                done.add_metric([state], count)
            yield done
            pending = session.scalar(select(func.count()).select_from(PendingShred)) or 0
            yield GaugeMetricFamily(
                "headshots_shreds_pending",
                "Shredded orders and drafts whose blobs the store has not deleted yet.",
                value=pending,
            )


def process_registry() -> CollectorRegistry:
    """This process's counters, or every process's on this machine in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def exposition(runtime: Runtime) -> bytes:
    """The whole /metrics page: process counters, then the database's gauges."""
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector(runtime))
    return generate_latest(process_registry()) + generate_latest(database)


def serve_worker_metrics(settings: Settings) -> None:
    """A worker's own counters on HEADSHOTS_METRICS_PORT, when it is set."""
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host, registry=process_registry())
