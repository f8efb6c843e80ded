"""/metrics: what an operator scrapes, parsed by prometheus_client's own parser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support import auth, upload, wait_ready

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def selfie() -> bytes:
    return (FIXTURES / "obama.jpg").read_bytes()


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_when_orders_are_made_and_deleted(client: TestClient, selfie: bytes) -> None:
    before = scrape(client)
    assert value(before, "headshots_queue_depth") == 0
    calls_before = value(
        before, "headshots_engine_call_seconds_count", engine="instant", outcome="rendered"
    )
    refused_before = value(before, "headshots_refusals_total", code="not_found")

    created = upload(client, selfie)
    assert created.status_code == 201, created.text
    order = created.json()
    wait_ready(client, order["id"], order["token"])
    client.get(f"/api/orders/{order['id']}", headers=auth("a wrong token"))  # 404

    during = scrape(client)
    assert value(during, "headshots_orders", tier="professional", state="ready") == 1
    assert value(during, "headshots_variations", engine="instant", status="done") == 8
    assert (
        value(during, "headshots_engine_call_seconds_count", engine="instant", outcome="rendered")
        == calls_before + 8
    )
    assert value(during, "headshots_refusals_total", code="not_found") == refused_before + 1
    assert value(during, "headshots_shreds_pending") == 0

    deleted = client.delete(f"/api/orders/{order['id']}", headers=auth(order["token"]))
    assert deleted.status_code == 204
    after = scrape(client)
    assert value(after, "headshots_shreds_done", reason="deleted") == 1
    assert value(after, "headshots_orders", tier="professional", state="deleted") == 1
    assert value(after, "headshots_variations", engine="instant", status="done") == 0
    # Nothing of an order is a label.
    text = client.get("/metrics").text
    assert order["id"] not in text and order["token"] not in text


COUNT_IN_A_PROCESS = """
from PIL import Image
from headshots import metrics
from headshots.engines.base import Rendered
metrics.refused("rate_limited")
image = Image.new("RGB", (8, 8))
metrics.engine_call("replicate", 3.0, Rendered(seed=1, image=image, seconds=3.0,
                    details={"cost_usd": 0.04}))
"""

SCRAPE_IN_A_PROCESS = """
from prometheus_client import generate_latest
from headshots import metrics
print(generate_latest(metrics.process_registry()).decode())
"""


def test_counters_of_several_processes_add_up_in_multiprocess_mode(tmp_path: Path) -> None:
    """Web processes and workers of one machine share PROMETHEUS_MULTIPROC_DIR."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
        "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
    }
    for _ in range(3):  # three processes, each counting and exiting
        subprocess.run([sys.executable, "-c", COUNT_IN_A_PROCESS], env=env, check=True)
    scraped = subprocess.run(
        [sys.executable, "-c", SCRAPE_IN_A_PROCESS],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
    }
    assert value(samples, "headshots_refusals_total", code="rate_limited") == 3
    assert (
        value(
            samples, "headshots_engine_call_seconds_count", engine="replicate", outcome="rendered"
        )
        == 3
    )
    assert value(
        samples, "headshots_engine_call_seconds_sum", engine="replicate", outcome="rendered"
    ) == pytest.approx(9.0)
    assert value(samples, "headshots_provider_cost_usd_total", engine="replicate") == (
        pytest.approx(0.12)
    )
