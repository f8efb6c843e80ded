"""Orders through the API on the hosted engine, against the fake Replicate.

The app, the in-process consumer, the real ``replicate`` client and the
identity check all run; only the paid provider is a local HTTP server, and
it refuses (422) any input its model's schema snapshot would refuse
(docs/decisions/0014-hosted-models.md). Each test makes a starter order of
small images so that every model of the table can be driven end to end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from headshots.engines.replicate.models import MODELS
from headshots.runtime import Runtime, build_runtime
from headshots.web.app import create_app
from tests.fakes.replicate_server import TOKEN, FakeReplicate
from tests.support import auth, make_settings, upload, wait_ready

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture(scope="module")
def selfie() -> bytes:
    return (FIXTURES / "obama.jpg").read_bytes()


@pytest.fixture
def fake() -> Iterator[FakeReplicate]:
    server = FakeReplicate().start()
    yield server
    server.stop()


def hosted_runtime(tmp_path: Path, fake: FakeReplicate, **overrides: Any) -> Runtime:
    settings = make_settings(
        tmp_path,
        None,
        engine="replicate",
        replicate_api_token=TOKEN,
        replicate_base_url=fake.url,
        # Small images and two variations: every model of the table in seconds.
        variations=2,
        output_width=512,
        output_height=640,
        # Checked in the job's own process: no pool of processes to start per test.
        identity_processes=0,
        **overrides,
    )
    return build_runtime(settings)


def order_cost_samples(client: TestClient, engine: str, tier: str) -> tuple[float, float]:
    """(orders counted, dollars summed) of the order-cost histogram."""
    found = {
        sample.name: sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
        if sample.labels.get("engine") == engine and sample.labels.get("tier") == tier
    }
    return (
        found.get("headshots_order_cost_usd_count", 0.0),
        found.get("headshots_order_cost_usd_sum", 0.0),
    )


@pytest.mark.parametrize("model", sorted(MODELS))
def test_an_order_on_each_model_is_made_with_inputs_its_schema_accepts(
    tmp_path: Path, fake: FakeReplicate, selfie: bytes, model: str
) -> None:
    runtime = hosted_runtime(tmp_path, fake, replicate_model=model)
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
            created = upload(client, selfie, tier="starter", styles=("corporate",))
            assert created.status_code == 201, created.text
            order = created.json()
            body = wait_ready(client, order["id"], order["token"])
            preview = client.get(body["variations"][0]["preview_url"], headers=auth(order["token"]))
    finally:
        runtime.close()

    # The fake answers 422 to any field, type or value the model's schema refuses.
    assert [v["status"] for v in body["variations"]] == ["done", "done"], body["variations"]
    assert all(create.path.endswith(f"/{model}/predictions") for create in fake.creates())
    assert len(fake.creates()) == 2
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    seeds = [v["seed"] for v in body["variations"]]
    if MODELS[model].seeded:
        assert all(isinstance(seed, int) for seed in seeds)
    else:  # no seed claimed where the model has none
        assert seeds == [None, None]


def test_an_orders_cost_sums_every_call_rerolls_too_in_the_metrics(
    tmp_path: Path, fake: FakeReplicate, selfie: bytes
) -> None:
    # Every face counts as drifted at this threshold: each variation is
    # re-rolled once (a second paid prediction) and kept with its flag.
    runtime = hosted_runtime(
        tmp_path,
        fake,
        replicate_model="black-forest-labs/flux-kontext-pro",
        identity_threshold=0.001,
        identity_rerolls=1,
    )
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
            counted_before, summed_before = order_cost_samples(client, "replicate", "starter")
            created = upload(client, selfie, tier="starter", styles=("corporate",))
            order = created.json()
            body = wait_ready(client, order["id"], order["token"])
            counted, summed = order_cost_samples(client, "replicate", "starter")
            with runtime.sessions() as session:
                from headshots.orders.models import Variation

                costs = [
                    session.get(Variation, v["id"]).details["cost_usd"]  # type: ignore[union-attr]
                    for v in body["variations"]
                ]
    finally:
        runtime.close()

    # Two variations, each a first try and one re-roll: four predictions paid.
    assert fake.paid() == 4
    assert all(v["identity"]["flag"] == "different_person" for v in body["variations"])
    # flux-kontext-pro: $0.04 an image, every image paid, the re-rolled ones too.
    assert costs == [pytest.approx(0.08), pytest.approx(0.08)]
    assert counted == counted_before + 1
    assert summed - summed_before == pytest.approx(0.16)


def test_an_order_on_a_local_engine_is_counted_at_no_cost(tmp_path: Path, selfie: bytes) -> None:
    runtime = build_runtime(make_settings(tmp_path, None))  # the instant test engine
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
            counted_before, summed_before = order_cost_samples(client, "instant", "starter")
            created = upload(client, selfie, tier="starter", styles=("corporate",))
            order = created.json()
            wait_ready(client, order["id"], order["token"])
            counted, summed = order_cost_samples(client, "instant", "starter")
    finally:
        runtime.close()
    assert (counted, summed) == (counted_before + 1, summed_before)


def test_ready_describes_the_configured_hosted_model_and_its_price(
    tmp_path: Path, fake: FakeReplicate
) -> None:
    runtime = hosted_runtime(tmp_path, fake, replicate_model="google/nano-banana")
    try:
        with TestClient(create_app(runtime)) as client:
            response = client.get("/readyz")
    finally:
        runtime.close()
    body = response.json()
    assert response.status_code == 200 and body["checks"]["engine"] == "ok", body
    model = body["model"]
    assert model["model"] == "google/nano-banana"
    assert model["title"] == MODELS["google/nano-banana"].title
    assert model["seed"] is False
    assert model["price_usd_per_headshot"] == pytest.approx(0.039)
    assert model["price_source"] == MODELS["google/nano-banana"].price.source
    # The token was checked against the provider.
    assert fake.calls("GET", r"^/v1/account$")
