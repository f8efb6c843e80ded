"""Hostile input and faults against a real uvicorn server.

Each case is what an attacker or a broken client can send over a socket:
bodies that never arrive, too many of them at once, forged Host headers,
malformed multipart, forged and replayed webhooks, concurrent deletes. The
service must answer each with a 4xx and a sentence, never a 5xx or a hang,
and leave no row or file behind.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from headshots.jobs.tasks import run_sweep
from headshots.orders.models import Order
from headshots.runtime import Runtime, build_runtime
from headshots.web.app import create_app
from tests.support import InstantEngine, LiveServer, make_settings

FIXTURES = Path(__file__).parents[1] / "fixtures"
SELFIE = (FIXTURES / "obama.jpg").read_bytes()
BODY_TIMEOUT = 1.0
UPLOADS_PER_CLIENT = 2


@pytest.fixture
def hostile_runtime(tmp_path: Path, database_url: str | None) -> Iterator[Runtime]:
    InstantEngine.reset()
    settings = make_settings(
        tmp_path,
        database_url,
        body_timeout_seconds=BODY_TIMEOUT,
        uploads_per_client=UPLOADS_PER_CLIENT,
    )
    active = build_runtime(settings)
    yield active
    active.close()


@pytest.fixture
def server(hostile_runtime: Runtime) -> Iterator[LiveServer]:
    live = LiveServer(create_app(hostile_runtime, run_consumer=True))
    yield live
    live.stop()


def send_raw(port: int, data: bytes, *, wait: float = 10) -> tuple[bytes, float]:
    """Send bytes, then read until the server closes; the answer and how long it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as connection:
        connection.sendall(data)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass  # what arrived before a reset is still the answer
    return received, time.monotonic() - started


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def slow_upload_head(port: int, declared: int = 100_000) -> bytes:
    return (
        f"POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        f"Content-Length: {declared}\r\n\r\n--xyz\r\n"
    ).encode()


def stored(runtime: Runtime) -> tuple[int, list[Path]]:
    with runtime.sessions() as session:
        orders = session.query(Order).count()
    blobs = runtime.settings.data_dir / "blobs"
    return orders, [p for p in blobs.rglob("*") if p.is_file()] if blobs.exists() else []


# --- bodies that never arrive ---------------------------------------------


def test_a_body_that_never_arrives_is_answered_408_in_time(
    server: LiveServer, hostile_runtime: Runtime
) -> None:
    answer, seconds = send_raw(server.port, slow_upload_head(server.port))
    assert status_of(answer) == 408
    assert b"took too long" in answer
    assert seconds < BODY_TIMEOUT + 5  # answered, and the connection closed
    assert stored(hostile_runtime) == (0, [])


def test_a_client_may_have_only_a_few_bodies_arriving_at_once(server: LiveServer) -> None:
    slow = []
    try:
        for _ in range(UPLOADS_PER_CLIENT):
            connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            connection.sendall(slow_upload_head(server.port))
            slow.append(connection)
        time.sleep(0.2)
        answer, seconds = send_raw(server.port, slow_upload_head(server.port), wait=5)
        assert status_of(answer) == 429
        assert seconds < 2  # refused at once, not after its own timeout
        # Other requests from the same address are still served meanwhile.
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        for connection in slow:
            connection.close()


def test_slots_of_clients_that_gave_up_are_freed(server: LiveServer) -> None:
    for _ in range(UPLOADS_PER_CLIENT * 2):
        connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        connection.sendall(slow_upload_head(server.port))
        connection.close()  # the client walks away mid-body
    time.sleep(0.5)
    answer = httpx.post(
        f"{server.url}/api/orders",
        data={"tier": "starter", "styles": ["corporate"]},
        files={"selfie": ("me.jpg", SELFIE, "image/jpeg")},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text


# --- forged Host headers ----------------------------------------------------


def wait_until_ready(client: httpx.Client, order_id: str, token: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = client.get(f"/api/orders/{order_id}", headers={"Authorization": f"Bearer {token}"})
        if answer.json()["status"] == "ready":
            return
        time.sleep(0.05)
    raise AssertionError("the order did not become ready")


def test_a_forged_host_is_refused_and_redirects_never_name_it(server: LiveServer) -> None:
    forged = httpx.get(f"{server.url}/", headers={"Host": "evil.example"})
    assert forged.status_code == 400
    assert "host name" in forged.json()["detail"]

    with httpx.Client(base_url=server.url, timeout=30) as browser:
        created = browser.post(
            "/api/orders",
            data={"tier": "starter", "styles": ["corporate"]},
            files={"selfie": ("me.jpg", SELFIE, "image/jpeg")},
        ).json()
        browser.cookies.set(f"order_{created['id']}", created["token"])
        wait_until_ready(browser, created["id"], created["token"])
        page = browser.get(f"/orders/{created['id']}", headers={"Accept": "text/html"})
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        pay_path = f"/orders/{created['id']}/pay"
        refused = browser.post(pay_path, data={"csrf": csrf}, headers={"Host": "evil.example"})
        assert refused.status_code == 400
        paid = browser.post(pay_path, data={"csrf": csrf})
        assert paid.status_code == 303
        assert paid.headers["location"].startswith("/pay/local/")
        checkout = browser.post(
            f"/api/orders/{created['id']}/checkout",
            headers={"Authorization": f"Bearer {created['token']}"},
        )
        assert checkout.json()["checkout_url"].startswith(f"{server.url}/pay/local/")


# --- malformed requests -------------------------------------------------------


MALFORMED = {
    "no-boundary": (b"multipart/form-data", b"--x\r\n\r\n"),
    "wrong-boundary": (b"multipart/form-data; boundary=abc", b"--zzz\r\ngarbage\r\n--zzz--\r\n"),
    "truncated-part": (
        b"multipart/form-data; boundary=abc",
        b'--abc\r\nContent-Disposition: form-data; name="selfie"; filename="a.jpg"\r\n\r\n\xff\xd8',
    ),
    "header-flood": (
        b"multipart/form-data; boundary=abc",
        b"--abc\r\n" + b"X-A: " + b"a" * 60_000 + b"\r\n\r\nx\r\n--abc--\r\n",
    ),
    "not-multipart": (b"application/json", b'{"selfie": "AAAA"}'),
    "binary-noise": (b"multipart/form-data; boundary=abc", bytes(range(256)) * 64),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_uploads_get_a_4xx_sentence_and_leave_nothing(
    case: str, server: LiveServer, hostile_runtime: Runtime
) -> None:
    content_type, body = MALFORMED[case]
    head = (
        f"POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n"
    ).encode()
    answer, _ = send_raw(server.port, head + b"Content-Type: " + content_type + b"\r\n\r\n" + body)
    assert 400 <= status_of(answer) < 500, answer[:200]
    detail = json.loads(answer.split(b"\r\n\r\n", 1)[1])["detail"]
    assert detail.endswith(".")
    assert stored(hostile_runtime) == (0, [])


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /api/orders/%00%0a HTTP/1.1",
        b"GET /api/orders/" + b"a" * 5000 + b" HTTP/1.1",
        b"DELETE /api/orders/..%2f..%2fetc HTTP/1.1",
        b"GET /orders/\xff\xfe HTTP/1.1",
    ],
)
def test_odd_paths_are_4xx(request_line: bytes, server: LiveServer) -> None:
    answer, _ = send_raw(
        server.port,
        request_line
        + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer x\r\n\r\n",
    )
    assert 400 <= status_of(answer) < 500, answer[:200]


# --- forged and replayed webhooks --------------------------------------------


@pytest.mark.parametrize("provider", ["local", "stripe", "replicate", "nope"])
def test_forged_webhooks_change_nothing_for_every_provider(
    provider: str, server: LiveServer, hostile_runtime: Runtime
) -> None:
    created = httpx.post(
        f"{server.url}/api/orders",
        data={"tier": "starter", "styles": ["corporate"]},
        files={"selfie": ("me.jpg", SELFIE, "image/jpeg")},
        timeout=30,
    ).json()
    forged = json.dumps(
        {"order_id": created["id"], "amount_cents": 900, "event_id": "evt_forged"}
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "Stripe-Signature": "t=1,v1=00",
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(time.time())),
        "webhook-signature": "v1,AAAA",
        "X-Signature": "00",
    }
    for _ in range(2):  # sent twice: a replay must not do better
        answer = httpx.post(
            f"{server.url}/api/webhooks/{provider}", content=forged, headers=headers
        )
        assert 400 <= answer.status_code < 500, answer.text
    order = httpx.get(
        f"{server.url}/api/orders/{created['id']}",
        headers={"Authorization": f"Bearer {created['token']}"},
    ).json()
    assert order["paid"] is False


# --- concurrent deletes -----------------------------------------------------------


def test_concurrent_deletes_shred_once_and_never_fail(
    server: LiveServer, hostile_runtime: Runtime
) -> None:
    created = httpx.post(
        f"{server.url}/api/orders",
        data={"tier": "professional", "styles": ["corporate", "minimal"]},
        files={"selfie": ("me.jpg", SELFIE, "image/jpeg")},
        timeout=30,
    ).json()
    statuses: list[int] = []
    start = threading.Barrier(6)

    def delete() -> None:
        start.wait()
        answer = httpx.delete(
            f"{server.url}/api/orders/{created['id']}",
            headers={"Authorization": f"Bearer {created['token']}"},
            timeout=60,
        )
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=delete) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert sorted(statuses) == [204] + [404] * 5
    # A job still running when the order was shredded may write its image
    # afterwards (sealed with the destroyed key); the next sweep deletes it.
    folder = hostile_runtime.settings.data_dir / "blobs" / created["id"]
    time.sleep(0.5)
    run_sweep(hostile_runtime)
    assert not folder.exists()
