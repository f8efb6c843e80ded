"""The JSON API, end to end: upload, generate, preview, pay, download, delete.

Runs on SQLite and PostgreSQL, with the real queue consumer, encrypted
storage and local payment provider; only the image engine is the instant
test engine.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from headshots.orders.models import Order, Variation
from headshots.runtime import Runtime
from tests.support import InstantEngine, auth, confirm_local_payment, upload, wait_ready

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture(scope="module")
def selfie() -> bytes:
    return (FIXTURES / "obama.jpg").read_bytes()


def pay(client: TestClient, order_id: str, token: str) -> None:
    checkout = client.post(f"/api/orders/{order_id}/checkout", headers=auth(token))
    assert checkout.status_code == 200, checkout.text
    url = checkout.json()["checkout_url"]
    assert checkout.json()["test_mode"] is True
    page = client.get(url)
    assert page.status_code == 200
    assert "test" in page.text.lower() and "No money is charged" in page.text
    assert client.post(url, follow_redirects=False).status_code == 403  # no CSRF token
    confirmed = confirm_local_payment(client, url)
    assert confirmed.status_code == 303


def test_the_whole_order_from_upload_to_download(client: TestClient, selfie: bytes) -> None:
    created = upload(client, selfie, tier="professional", styles=("corporate", "minimal"))
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "queued"
    assert order["token"] and order["id"]
    assert order["expires_at"].endswith("Z")
    assert created.headers["cache-control"] == "no-store"
    order_id, token = order["id"], order["token"]

    ready = wait_ready(client, order_id, token)
    assert ready["paid"] is False
    assert ready["progress"]["done"] == 8
    assert [v["style"] for v in ready["variations"]] == ["corporate"] * 4 + ["minimal"] * 4
    assert len({v["seed"] for v in ready["variations"]}) == 8
    assert "token" not in ready

    first = ready["variations"][0]
    preview = client.get(first["preview_url"], headers=auth(token))
    assert preview.status_code == 200
    assert preview.headers["content-type"] == "image/jpeg"
    assert preview.headers["cache-control"] == "no-store"
    preview_image = Image.open(io.BytesIO(preview.content))
    assert max(preview_image.size) <= 768

    clean_url = f"/api/orders/{order_id}/variations/{first['id']}/download"
    refused = client.get(clean_url, headers=auth(token))
    assert refused.status_code == 402
    assert "Pay for this order" in refused.json()["detail"]
    assert (
        client.get(f"/api/orders/{order_id}/download.zip", headers=auth(token)).status_code == 402
    )

    pay(client, order_id, token)
    paid = client.get(f"/api/orders/{order_id}", headers=auth(token)).json()
    assert paid["paid"] is True
    assert paid["variations"][0]["download_url"] == clean_url

    clean = client.get(clean_url, headers=auth(token))
    assert clean.status_code == 200
    assert clean.headers["content-type"] == "image/png"
    clean_image = Image.open(io.BytesIO(clean.content))
    assert clean_image.format == "PNG"
    assert clean_image.size == (1024, 1280)
    assert max(clean_image.size) > max(preview_image.size)

    archive = client.get(f"/api/orders/{order_id}/download.zip", headers=auth(token))
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as bundle:
        names = bundle.namelist()
        assert len(names) == 8
        assert all(Image.open(bundle.open(name)).format == "PNG" for name in names)


def test_the_preview_is_watermarked_until_the_order_is_paid(
    client: TestClient, selfie: bytes
) -> None:
    order = upload(client, selfie, tier="starter", styles=("corporate",)).json()
    ready = wait_ready(client, order["id"], order["token"])
    variation = ready["variations"][0]

    def grey(url: str) -> Image.Image:
        answer = client.get(url, headers=auth(order["token"]))
        assert answer.status_code == 200
        return Image.open(io.BytesIO(answer.content)).convert("L")

    before = grey(variation["preview_url"])
    pay(client, order["id"], order["token"])
    after = grey(variation["preview_url"])
    clean = grey(f"/api/orders/{order['id']}/variations/{variation['id']}/download")
    plain = np.asarray(clean.resize(before.size), dtype=float)
    marked, unmarked = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    assert after.size == before.size
    h, w = marked.shape
    for row in range(3):
        for col in range(3):
            cell = (
                slice(row * h // 3, (row + 1) * h // 3),
                slice(col * w // 3, (col + 1) * w // 3),
            )
            # Before paying, every ninth carries the mark; after, none does.
            # Before paying, every ninth carries the mark (thinner over the
            # face, ~5 levels, ~12 elsewhere); after, none does (what is left
            # is JPEG and resampling, under 2 levels).
            assert np.abs(marked[cell] - plain[cell]).mean() > 4, (row, col)
            assert np.abs(unmarked[cell] - plain[cell]).mean() < 2.5, (row, col)


def test_each_headshot_downloads_as_portrait_square_and_round(
    client: TestClient, selfie: bytes
) -> None:
    order = upload(client, selfie, tier="starter", styles=("corporate",)).json()
    ready = wait_ready(client, order["id"], order["token"])
    pay(client, order["id"], order["token"])
    variation = ready["variations"][0]
    base = f"/api/orders/{order['id']}/variations/{variation['id']}/download"

    def fetch(query: str) -> Any:
        return client.get(f"{base}{query}", headers=auth(order["token"]))

    portrait, square, round_ = fetch(""), fetch("?format=square"), fetch("?format=round")
    sizes = {}
    for answer, name in ((portrait, "portrait"), (square, "square"), (round_, "round")):
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "image/png"
        disposition = answer.headers["content-disposition"]
        assert disposition == f'attachment; filename="corporate-1-{name}.png"'
        image = Image.open(io.BytesIO(answer.content))
        image.load()
        sizes[name] = (image.size, image.mode)
    assert sizes["portrait"] == ((1024, 1280), "RGB")
    assert sizes["square"] == ((1024, 1024), "RGB")
    assert sizes["round"] == ((1024, 1024), "RGBA")
    alpha = np.asarray(Image.open(io.BytesIO(round_.content)))[..., 3]
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0 and alpha[512, 512] == 255

    for query, sentence in (
        ("?format=oval", "no format called 'oval'"),
        ("?format=square,round", "one format per image"),
    ):
        refused = fetch(query)
        assert refused.status_code == 422
        assert refused.json()["error"] == "unknown_format"
        assert sentence in refused.json()["detail"]


def test_the_zip_holds_the_formats_asked_for_named_by_style_number_and_format(
    client: TestClient, selfie: bytes
) -> None:
    order = upload(client, selfie, tier="starter", styles=("friendly",)).json()
    wait_ready(client, order["id"], order["token"])
    pay(client, order["id"], order["token"])
    url = f"/api/orders/{order['id']}/download.zip"
    archive = client.get(f"{url}?formats=portrait,square", headers=auth(order["token"]))
    assert archive.status_code == 200
    day = order["created_at"][:10]
    assert archive.headers["content-disposition"] == (
        f'attachment; filename="headshots-{day}-starter.zip"'
    )
    with zipfile.ZipFile(io.BytesIO(archive.content)) as bundle:
        names = sorted(bundle.namelist())
        sizes = {n: Image.open(bundle.open(n)).size for n in names}
    assert names == sorted(
        f"friendly-{number}-{shape}.png"
        for number in range(1, 5)
        for shape in ("portrait", "square")
    )
    assert {sizes[n] for n in names if "square" in n} == {(1024, 1024)}
    bad = client.get(f"{url}?formats=portrait,jpeg", headers=auth(order["token"]))
    assert bad.status_code == 422 and "jpeg" in bad.json()["detail"]


def test_an_engine_failure_fails_one_variation_and_the_order_completes(
    client: TestClient, selfie: bytes
) -> None:
    InstantEngine.fail_once = {"friendly"}
    order = upload(client, selfie, styles=("corporate", "friendly")).json()
    ready = wait_ready(client, order["id"], order["token"])
    failed = [v for v in ready["variations"] if v["status"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["style"] == "friendly"
    assert failed[0]["failure"]["reason"] == "The test engine refused this one."
    assert failed[0]["preview_url"] is None
    assert ready["progress"] == {"pending": 0, "running": 0, "finishing": 0, "done": 7, "failed": 1}


def test_access_needs_the_orders_own_token(client: TestClient, selfie: bytes) -> None:
    first = upload(client, selfie, tier="starter", styles=("corporate",)).json()
    second = upload(client, selfie, tier="starter", styles=("minimal",)).json()
    path = f"/api/orders/{first['id']}"
    missing = client.get(path)
    wrong = client.get(path, headers=auth(second["token"]))
    nonexistent = client.get("/api/orders/AAAAAAAAAAAAAAAAAAAAAA", headers=auth(first["token"]))
    garbage = client.get(path, headers={"Authorization": "Basic Zm9vOmJhcg=="})
    for response in (missing, wrong, nonexistent, garbage):
        assert response.status_code == 404
        assert response.json() == nonexistent.json()  # nothing tells them apart
    assert client.get(path, headers=auth(first["token"])).status_code == 200
    delete = client.delete(path, headers=auth(second["token"]))
    assert delete.status_code == 404
    assert client.get(path, headers=auth(first["token"])).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/orders/..%2F..%2Fetc%2Fpasswd",
        "/api/orders/../../etc/passwd",
        "/api/orders/%00",
        "/api/orders/AAAAAAAAAAAAAAAAAAAAAA/variations/..%2Fselfie.png/download",
    ],
)
def test_path_like_ids_are_not_found(client: TestClient, path: str) -> None:
    response = client.get(path, headers=auth("x" * 43))
    assert response.status_code == 404
    assert "detail" in response.json()


def test_a_repeated_payment_confirmation_is_applied_once(
    client: TestClient, runtime: Runtime, selfie: bytes
) -> None:
    from headshots.payments.local import LocalPayments

    order = upload(client, selfie, tier="starter", styles=("corporate",)).json()
    assert isinstance(runtime.payments, LocalPayments)
    payload, headers = runtime.payments.confirmation(
        session_id="lcs_test", order_id=order["id"], amount_cents=900, currency="usd"
    )
    first = client.post("/api/webhooks/local", content=payload, headers=headers)
    again = client.post("/api/webhooks/local", content=payload, headers=headers)
    assert first.json() == {"received": True, "duplicate": False, "unlocked": True}
    assert again.json() == {"received": True, "duplicate": True, "unlocked": False}
    forged = client.post(
        "/api/webhooks/local", content=payload.replace(b"900", b"100"), headers=headers
    )
    assert forged.status_code == 400
    assert client.post("/api/webhooks/stripe", content=payload).status_code == 404


def test_delete_destroys_everything_at_once(
    client: TestClient, runtime: Runtime, selfie: bytes
) -> None:
    order = upload(client, selfie, tier="starter", styles=("corporate",)).json()
    wait_ready(client, order["id"], order["token"])
    blob_dir = runtime.settings.data_dir / "blobs" / order["id"]
    assert any(blob_dir.iterdir())
    assert (
        client.delete(f"/api/orders/{order['id']}", headers=auth(order["token"])).status_code == 204
    )
    assert not blob_dir.exists()
    assert client.get(f"/api/orders/{order['id']}", headers=auth(order["token"])).status_code == 404
    with runtime.sessions() as session:
        tombstone = session.get(Order, order["id"])
        assert tombstone is not None
        assert tombstone.status == "deleted"
        assert tombstone.wrapped_key is None and tombstone.token_hash is None
        assert tombstone.tier == "starter"
        count = session.scalar(select(func.count()).select_from(Variation))
        assert count == 0


def count_rows(runtime: Runtime) -> tuple[int, int]:
    with runtime.sessions() as session:
        orders = session.scalar(select(func.count()).select_from(Order)) or 0
        variations = session.scalar(select(func.count()).select_from(Variation)) or 0
    return orders, variations


def blob_files(runtime: Runtime) -> list[Path]:
    root = runtime.settings.data_dir / "blobs"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def png_bomb() -> bytes:
    from tests.imaging.test_intake import png_bomb as make

    return make(60_000, 60_000)


def truncated(selfie: bytes) -> bytes:
    return selfie[: len(selfie) // 2]


REFUSALS: list[tuple[str, Any, dict[str, Any], int, str]] = [
    ("empty", lambda s: b"", {}, 422, "empty"),
    ("text", lambda s: b"hello, I am not a photo\n" * 50, {}, 422, "not a photo we can read"),
    ("truncated", truncated, {}, 422, "damaged or incomplete"),
    ("bomb", lambda s: png_bomb(), {}, 413, "megapixels"),
    ("group", lambda s: (FIXTURES / "group_of_five.jpg").read_bytes(), {}, 422, "more than one"),
    ("no face", lambda s: (FIXTURES / "no_face_street.jpg").read_bytes(), {}, 422, "find a face"),
    ("unknown style", lambda s: s, {"styles": ("corporate", "pirate")}, 422, "no style called"),
    ("duplicate", lambda s: s, {"styles": ("corporate", "corporate")}, 422, "only once"),
    (
        "too many",
        lambda s: s,
        {"tier": "starter", "styles": ("corporate", "minimal")},
        422,
        "1 style",
    ),
    ("no styles", lambda s: s, {"styles": ()}, 422, "at least one style"),
    ("unknown tier", lambda s: s, {"tier": "platinum"}, 422, "no tier called"),
    ("missing tier", lambda s: s, {"tier": None}, 422, "'tier' is required"),
]


@pytest.mark.parametrize(
    ("case", "make", "options", "status", "message"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_bad_uploads_get_a_sentence_and_leave_nothing_behind(
    client: TestClient,
    runtime: Runtime,
    selfie: bytes,
    case: str,
    make: Any,
    options: dict[str, Any],
    status: int,
    message: str,
) -> None:
    response = upload(client, make(selfie), **options)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert count_rows(runtime) == (0, 0)
    assert blob_files(runtime) == []


def test_an_error_reaches_the_client_with_the_status_code_and_headers_it_was_raised_with(
    client: TestClient, runtime: Runtime
) -> None:
    from headshots.errors import HeadshotsError

    # The preflight raises its refusal with the finding's own code, not the
    # class's general one, so a program can tell a tight crop from a group.
    refused = upload(client, (FIXTURES / "obama_partial_face.jpg").read_bytes())
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "tight_crop"
    assert "top of your head" in refused.json()["detail"]
    assert count_rows(runtime) == (0, 0)

    def busy() -> None:
        raise HeadshotsError(
            "The line is busy: try again in a minute.",
            status_code=409,
            code="line_busy",
            headers={"Retry-After": "60"},
        )

    app = client.app
    assert isinstance(app, FastAPI)
    app.add_api_route("/api/busy", busy)
    response = client.get("/api/busy")
    assert response.status_code == 409
    assert response.json() == {
        "error": "line_busy",
        "detail": "The line is busy: try again in a minute.",
    }
    assert response.headers["retry-after"] == "60"


def test_a_form_without_the_photo_is_refused(client: TestClient, runtime: Runtime) -> None:
    response = client.post("/api/orders", data={"tier": "starter", "styles": ["corporate"]})
    assert response.status_code == 422
    assert "multipart" in response.json()["detail"] or "selfie" in response.json()["detail"]
    response = client.post(
        "/api/orders",
        data={"tier": "starter", "styles": ["corporate"]},
        files={"other": ("x.txt", b"hi", "text/plain")},
    )
    assert response.status_code == 422
    assert "selfie" in response.json()["detail"]
    assert count_rows(runtime) == (0, 0)


def test_an_oversized_upload_is_cut_off_while_streaming(
    tmp_path: Path, database_url: str | None
) -> None:
    from headshots.runtime import build_runtime
    from headshots.web.app import create_app
    from tests.support import BodyMeter, LiveServer, make_settings, stream_until_answered

    small = build_runtime(make_settings(tmp_path, database_url, max_upload_bytes=200_000))
    meter = BodyMeter(create_app(small, run_consumer=False))
    server = LiveServer(meter)
    head = (
        b"--xyz\r\n"
        b'Content-Disposition: form-data; name="selfie"; filename="big.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n"
    )
    try:
        # 12.5 MB if the server read it all.
        answer = stream_until_answered(
            server.port, "/api/orders", "multipart/form-data; boundary=xyz", head
        )
        assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
        assert b"larger than" in answer
        # Read up to the limit and the form's room, plus one read of the
        # socket: not the body (what the client got to send depends on timing).
        assert meter.received["/api/orders"] < 200_000 + 64 * 1024 + 1024 * 1024
        assert count_rows(small) == (0, 0)
    finally:
        server.stop()
        small.close()


def test_a_full_disk_refuses_the_upload_cleanly(
    tmp_path: Path, database_url: str | None, tiny_disk: Path, selfie: bytes
) -> None:
    from headshots.runtime import build_runtime
    from headshots.storage.local import LocalBlobStore
    from headshots.storage.vault import EncryptedBlobs
    from headshots.web.app import create_app
    from tests.support import make_settings

    runtime = build_runtime(make_settings(tmp_path, database_url))
    # The blobs live on a real 256 KiB file system: the selfie cannot fit.
    runtime.blobs = EncryptedBlobs(LocalBlobStore(tiny_disk / "blobs"), runtime.blobs.keyring)
    try:
        with TestClient(create_app(runtime, run_consumer=False)) as client:
            response = upload(client, selfie, tier="starter", styles=("corporate",))
        assert response.status_code == 507
        assert "out of storage space" in response.json()["detail"]
        assert count_rows(runtime) == (0, 0)
        leftovers = [p for p in (tiny_disk / "blobs").rglob("*") if p.is_file()]
        assert leftovers == []
    finally:
        runtime.close()
