"""Redo and favourites through the JSON API and the order page, on SQLite and PostgreSQL.

A redo makes one variation again with a new seed, before or after paying,
up to the order's number of redos: the image made before stays shown until
the new one replaces it, a redo that fails keeps it and gives the redo back,
and a redo racing the order's deletion or its payment leaves nothing
behind and nothing half done. Favourites are the person's marks; the zip
can hold only them.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps
from sqlalchemy import select

from headshots.engines.base import Failed, Outcome, Rendered, register_engine
from headshots.imaging.selfie import PreparedSelfie
from headshots.jobs import tasks
from headshots.orders.db import transaction
from headshots.orders.models import Order, Variation, utcnow
from headshots.orders.variations import MAX_ATTEMPTS
from headshots.runtime import Runtime, build_runtime
from headshots.styles import Style
from headshots.web.app import create_app
from tests.jobs.test_lifecycle import assert_gone
from tests.support import InstantEngine, auth, confirm_local_payment, make_settings, upload
from tests.web.test_pages import csrf_of

SELFIE = (Path(__file__).parents[1] / "fixtures" / "obama.jpg").read_bytes()
COST = 0.04


class SeededEngine(InstantEngine):
    """The selfie with a block of colour that its seed picks, at a hosted engine's price.

    Each seed gives a different image, so a redo's image can be told from
    the one it replaced; calls wait while ``gate`` is clear, and a seed in
    ``failing`` fails.
    """

    name: ClassVar[str] = "seeded"
    gate: ClassVar[threading.Event] = threading.Event()
    entered: ClassVar[threading.Event] = threading.Event()
    failing: ClassVar[set[int]] = set()
    fail_all: ClassVar[bool] = False

    def generate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: tuple[int, int]
    ) -> list[Outcome]:
        SeededEngine.entered.set()
        SeededEngine.gate.wait(30)
        outcomes: list[Outcome] = []
        for seed in seeds:
            details = {"cost_usd": COST, "model": "test/seeded"}
            if SeededEngine.fail_all or seed in SeededEngine.failing:
                reason = "The test engine refused this seed."
                outcomes.append(Failed(seed=seed, reason=reason, code="test", details=details))
                continue
            image = ImageOps.fit(selfie.image, size, Image.Resampling.BILINEAR)
            image.paste(colour_of(seed), (0, 0, size[0] // 4, size[1] // 4))
            outcomes.append(Rendered(seed=seed, image=image, seconds=0.0, details=details))
        return outcomes


register_engine("seeded", SeededEngine)


def colour_of(seed: int) -> tuple[int, int, int]:
    return (seed % 251, (seed // 251) % 251, (seed // 63001) % 251)


@pytest.fixture
def service(tmp_path: Path, database_url: str | None) -> Iterator[tuple[TestClient, Runtime]]:
    InstantEngine.reset()
    SeededEngine.gate = threading.Event()
    SeededEngine.gate.set()
    SeededEngine.entered = threading.Event()
    SeededEngine.failing = set()
    SeededEngine.fail_all = False
    settings = make_settings(tmp_path, database_url, engine="seeded", redos_per_order=2)
    runtime = build_runtime(settings)
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
            yield client, runtime
    finally:
        SeededEngine.gate.set()
        runtime.close()


def order_of(client: TestClient, order: dict[str, Any]) -> Any:
    answer = client.get(f"/api/orders/{order['id']}", headers=auth(order["token"]))
    assert answer.status_code == 200, answer.text
    return answer.json()


def settled(client: TestClient, order: dict[str, Any], timeout: float = 60) -> Any:
    """The order once it is ready and no variation is being made again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = order_of(client, order)
        if body["status"] == "ready" and not any(v["redoing"] for v in body["variations"]):
            return body
        time.sleep(0.05)
    raise AssertionError(f"order not settled: {body['progress']}")


def new_order(client: TestClient) -> dict[str, Any]:
    created = upload(client, SELFIE, tier="starter", styles=("corporate",))
    assert created.status_code == 201, created.text
    order: dict[str, Any] = created.json()
    settled(client, order)
    return order


def redo(client: TestClient, order: dict[str, Any], variation_id: str) -> Any:
    return client.post(
        f"/api/orders/{order['id']}/variations/{variation_id}/redo", headers=auth(order["token"])
    )


def corner(data: bytes) -> tuple[int, ...]:
    """The colour of the block the engine painted (the preview's top left, under its mark)."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    block = image.crop((4, 4, image.width // 4 - 4, image.height // 4 - 4))
    return tuple(round(c) for c in block.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0)))


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def at_once(*calls: Callable[[], int]) -> list[int]:
    """Each call in a thread of its own, all let go at the same moment; their answers."""
    barrier = threading.Barrier(len(calls))
    answers: list[int] = [0] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def pay(client: TestClient, order: dict[str, Any]) -> None:
    checkout = client.post(f"/api/orders/{order['id']}/checkout", headers=auth(order["token"]))
    assert checkout.status_code == 200, checkout.text
    assert confirm_local_payment(client, checkout.json()["checkout_url"]).status_code == 303


def test_a_redo_makes_one_variation_again_and_its_new_image_replaces_the_old(
    service: tuple[TestClient, Runtime],
) -> None:
    client, runtime = service
    order = new_order(client)
    before = order_of(client, order)
    assert before["redos_left"] == 2
    pay(client, order)
    first, *others = order_of(client, order)["variations"]
    old_png = client.get(first["download_url"], headers=auth(order["token"])).content
    assert close(corner(old_png), colour_of(first["seed"]), tolerance=2)

    SeededEngine.gate.clear()
    SeededEngine.entered.clear()
    answer = redo(client, order, first["id"])
    assert answer.status_code == 202, answer.text
    assert answer.json()["redos_left"] == 1
    assert answer.json()["variation"]["redoing"] is True
    assert SeededEngine.entered.wait(30)
    # While it is made again, the image made before stays: shown and downloadable.
    during = order_of(client, order)
    assert during["status"] == "queued" and during["redos_left"] == 1
    remade = next(v for v in during["variations"] if v["id"] == first["id"])
    assert remade["redoing"] is True and remade["preview_url"] == first["preview_url"]
    kept = client.get(first["download_url"], headers=auth(order["token"]))
    assert kept.status_code == 200
    assert close(corner(kept.content), colour_of(first["seed"]), tolerance=2)
    SeededEngine.gate.set()

    after = settled(client, order)
    done = next(v for v in after["variations"] if v["id"] == first["id"])
    assert done["status"] == "done" and done["redoing"] is False
    assert done["seed"] != first["seed"]
    assert {v["seed"] for v in after["variations"] if v["id"] != first["id"]} == {
        v["seed"] for v in others
    }
    new_png = client.get(done["download_url"], headers=auth(order["token"])).content
    assert close(corner(new_png), colour_of(done["seed"]), tolerance=2)
    preview = client.get(done["preview_url"], headers=auth(order["token"])).content
    assert close(corner(preview), colour_of(done["seed"]))
    # The old image is gone: the variation's files hold only the new one.
    with runtime.sessions() as session:
        variation = session.get(Variation, first["id"])
        assert variation is not None
        # Both engine calls are paid for: the redo's cost adds to the first's.
        assert variation.details["cost_usd"] == pytest.approx(2 * COST)
        names = [variation.image_blob, variation.preview_blob]
    blob_dir = runtime.settings.data_dir / "blobs" / order["id"]
    assert sorted(p.name for p in blob_dir.iterdir() if first["id"] in p.name) == sorted(names)


def test_redos_stop_at_the_order_limit_and_never_start_on_an_unfinished_image(
    service: tuple[TestClient, Runtime],
) -> None:
    client, _ = service
    order = new_order(client)
    variations = order_of(client, order)["variations"]
    SeededEngine.gate.clear()
    assert redo(client, order, variations[0]["id"]).status_code == 202
    busy = redo(client, order, variations[0]["id"])
    assert busy.status_code == 409
    assert busy.json()["error"] == "not_finished"
    assert "still being made" in busy.json()["detail"]
    assert order_of(client, order)["redos_left"] == 1  # a refused redo costs nothing
    assert redo(client, order, variations[1]["id"]).status_code == 202
    SeededEngine.gate.set()
    settled(client, order)
    past = redo(client, order, variations[2]["id"])
    assert past.status_code == 409
    assert past.json()["error"] == "no_redos_left"
    assert "no redo left" in past.json()["detail"]
    assert order_of(client, order)["redos_left"] == 0
    missing = redo(client, order, "A" * 22)
    assert missing.status_code == 404


def test_two_redos_racing_for_the_last_one_make_one(service: tuple[TestClient, Runtime]) -> None:
    client, _ = service
    order = new_order(client)
    variations = order_of(client, order)["variations"]
    assert redo(client, order, variations[0]["id"]).status_code == 202
    settled(client, order)
    answers = at_once(
        lambda: redo(client, order, variations[1]["id"]).status_code,
        lambda: redo(client, order, variations[2]["id"]).status_code,
    )
    assert sorted(answers) == [202, 409]
    after = settled(client, order)
    assert after["redos_left"] == 0
    # The first redo and the race's winner: two images were made again, no more.
    seeds = zip(after["variations"], variations, strict=True)
    assert sum(now["seed"] != was["seed"] for now, was in seeds) == 2


def test_a_redo_whose_worker_keeps_stopping_keeps_the_image(
    service: tuple[TestClient, Runtime],
) -> None:
    client, runtime = service
    order = new_order(client)
    first = order_of(client, order)["variations"][0]
    SeededEngine.gate.clear()
    SeededEngine.entered.clear()
    assert redo(client, order, first["id"]).status_code == 202
    assert SeededEngine.entered.wait(30)
    # Its worker is taken for dead once more than it may be: the sweep gives the redo up.
    with transaction(runtime.sessions) as session:
        variation = session.get(Variation, first["id"])
        assert variation is not None
        variation.lease_until = utcnow() - timedelta(seconds=1)
        variation.attempts = MAX_ATTEMPTS
    tasks.run_sweep(runtime)
    after = settled(client, order)
    kept = next(v for v in after["variations"] if v["id"] == first["id"])
    assert kept["status"] == "done" and kept["seed"] == first["seed"]
    assert "could not be made again" in kept["redo_failure"]
    assert after["redos_left"] == 2
    # The call the "dead" worker still waits on ends in a refusal nobody records.
    SeededEngine.fail_all = True
    SeededEngine.gate.set()


def test_redo_is_off_when_the_operator_sets_none(tmp_path: Path, database_url: str | None) -> None:
    runtime = build_runtime(make_settings(tmp_path, database_url, redos_per_order=0))
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
            order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
            body = settled(client, order)
            assert body["redos_left"] == 0
            refused = redo(client, order, body["variations"][0]["id"])
            assert refused.status_code == 409 and refused.json()["error"] == "no_redos_left"
    finally:
        runtime.close()


def test_a_redo_that_fails_keeps_the_image_and_gives_the_redo_back(
    service: tuple[TestClient, Runtime],
) -> None:
    client, runtime = service
    order = new_order(client)
    first = order_of(client, order)["variations"][0]
    before = client.get(first["preview_url"], headers=auth(order["token"])).content
    SeededEngine.fail_all = True
    assert redo(client, order, first["id"]).status_code == 202
    after = settled(client, order)
    assert after["redos_left"] == 2
    kept = next(v for v in after["variations"] if v["id"] == first["id"])
    assert kept["status"] == "done" and kept["seed"] == first["seed"]
    assert kept["redo_failure"] == "The test engine refused this seed."
    assert client.get(kept["preview_url"], headers=auth(order["token"])).content == before
    with runtime.sessions() as session:
        variation = session.get(Variation, first["id"])
        assert variation is not None
        assert variation.details["cost_usd"] == pytest.approx(2 * COST)  # the failed call too


def test_a_failed_variation_can_be_made_again(service: tuple[TestClient, Runtime]) -> None:
    client, _ = service
    SeededEngine.fail_all = True
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    failed = settled(client, order)["variations"][0]
    assert failed["status"] == "failed" and failed["preview_url"] is None
    SeededEngine.fail_all = False
    assert redo(client, order, failed["id"]).status_code == 202
    made = next(v for v in settled(client, order)["variations"] if v["id"] == failed["id"])
    assert made["status"] == "done" and made["preview_url"] and made["failure"] is None


def test_a_redo_racing_the_orders_deletion_leaves_nothing(
    service: tuple[TestClient, Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    client, runtime = service
    order = new_order(client)
    variation_id = order_of(client, order)["variations"][0]["id"]
    # Deleted while the redo's engine call is under way: its image is never stored.
    SeededEngine.gate.clear()
    SeededEngine.entered.clear()
    assert redo(client, order, variation_id).status_code == 202
    assert SeededEngine.entered.wait(30)
    deleted = client.delete(f"/api/orders/{order['id']}", headers=auth(order["token"]))
    assert deleted.status_code == 204
    SeededEngine.gate.set()
    assert_gone(runtime, order, caplog)

    # The two requests at once, many times: whichever wins, nothing is left.
    for _ in range(4):
        order = new_order(client)
        variation_id = order_of(client, order)["variations"][0]["id"]
        url = f"/api/orders/{order['id']}"
        redone, deleted = at_once(
            lambda: redo(client, order, variation_id).status_code,  # noqa: B023
            lambda: client.delete(url, headers=auth(order["token"])).status_code,  # noqa: B023
        )
        assert deleted == 204
        assert redone in (202, 404)
        assert_gone(runtime, order, caplog)


def test_a_redo_racing_the_payment_both_land(service: tuple[TestClient, Runtime]) -> None:
    client, runtime = service
    for _ in range(3):
        order = new_order(client)
        first = order_of(client, order)["variations"][0]
        checkout = client.post(f"/api/orders/{order['id']}/checkout", headers=auth(order["token"]))
        url = checkout.json()["checkout_url"]
        redone, paid = at_once(
            lambda: redo(client, order, first["id"]).status_code,  # noqa: B023
            lambda: confirm_local_payment(client, url).status_code,  # noqa: B023
        )
        assert (redone, paid) == (202, 303)
        after = settled(client, order)
        assert after["paid"] is True and after["redos_left"] == 1
        done = next(v for v in after["variations"] if v["id"] == first["id"])
        assert done["seed"] != first["seed"]
        png = client.get(done["download_url"], headers=auth(order["token"]))
        assert png.status_code == 200
        assert close(corner(png.content), colour_of(done["seed"]), tolerance=2)
    with runtime.sessions() as session:
        paid_orders = session.scalars(select(Order).where(Order.paid_at.is_not(None))).all()
        assert len(paid_orders) == 3


def test_favourites_are_marked_unmarked_and_zipped_alone(
    service: tuple[TestClient, Runtime],
) -> None:
    client, _ = service
    order = new_order(client)
    headers = auth(order["token"])
    variations = order_of(client, order)["variations"]
    assert not any(v["favourite"] for v in variations)
    favourites_zip = f"/api/orders/{order['id']}/download.zip?favourites=1"
    assert client.get(favourites_zip, headers=headers).status_code == 402
    pay(client, order)
    none = client.get(favourites_zip, headers=headers)
    assert none.status_code == 409
    assert none.json()["error"] == "no_favourites"
    assert "favourite" in none.json()["detail"]

    base = f"/api/orders/{order['id']}/variations"
    for variation in variations[:3]:
        marked = client.post(f"{base}/{variation['id']}/favourite", headers=headers)
        assert marked.status_code == 200 and marked.json()["favourite"] is True
    unmarked = client.delete(f"{base}/{variations[1]['id']}/favourite", headers=headers)
    assert unmarked.status_code == 200 and unmarked.json()["favourite"] is False
    body = order_of(client, order)
    assert [v["favourite"] for v in body["variations"]] == [True, False, True, False]

    archive = client.get(favourites_zip, headers=headers)
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as bundle:
        assert sorted(bundle.namelist()) == ["corporate-1-portrait.png", "corporate-3-portrait.png"]
    with zipfile.ZipFile(
        io.BytesIO(client.get(f"/api/orders/{order['id']}/download.zip", headers=headers).content)
    ) as bundle:
        assert len(bundle.namelist()) == 4
    # Another order's token opens nothing of this one.
    other = new_order(client)
    foreign = client.post(f"{base}/{variations[0]['id']}/favourite", headers=auth(other["token"]))
    assert foreign.status_code == 404


def test_the_order_page_makes_again_in_place_and_marks_favourites(
    service: tuple[TestClient, Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = service
    from tests.web.test_pages import make_order

    order_id = make_order(client)
    page_url = f"/orders/{order_id}"
    deadline = time.monotonic() + 60
    while "Your previews are ready" not in (page := client.get(page_url)).text:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    progress = client.get(f"{page_url}/progress").json()
    variation = progress["variations"][0]
    action = f"{page_url}/variations/{variation['id']}"
    assert f'action="{action}/redo"' in page.text
    assert "2</span> left for this order" in page.text
    assert 'aria-pressed="false"' in page.text

    # No CSRF token, no redo; the API's bearer route does not take the cookie.
    assert client.post(f"{action}/redo", data={"csrf": "x"}).status_code == 403
    assert client.post(f"/api{action}/redo").status_code == 404
    SeededEngine.gate.clear()
    pressed = client.post(f"{action}/redo", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert pressed.status_code == 303
    assert pressed.headers["location"] == f"{page_url}#v-{variation['id']}"
    remaking = client.get(page_url).text
    assert "Being made again with a new seed" in remaking
    assert f'src="{variation["preview_url"]}"' in remaking  # the old preview stays meanwhile
    SeededEngine.gate.set()

    marked = client.post(
        f"{action}/favourite",
        data={"csrf": csrf_of(page), "favourite": "1"},
        follow_redirects=False,
    )
    assert marked.status_code == 303
    deadline = time.monotonic() + 60
    while "Being made again" in (page := client.get(page_url)).text:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert 'aria-pressed="true"' in page.text
    assert "1</span> left for this order" in page.text
    remade = client.get(f"{page_url}/progress").json()["variations"][0]
    assert remade["favourite"] is True and remade["seed"] != variation["seed"]
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not errors, [r.getMessage() for r in errors]
