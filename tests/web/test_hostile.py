"""Hostile input and faults against a real uvicorn server.

Each case is what an attacker or a broken client can send over a socket:
bodies that never arrive, too many of them at once, forged Host headers,
malformed multipart, forged and replayed webhooks, concurrent deletes,
oversized forms and webhooks, another site's requests carrying the order's
cookie. The service must answer each with a 4xx and a sentence, never a 5xx
or a hang, and leave no row or file behind (not even a temporary one).
"""

from __future__ import annotations

import io
import json
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from headshots.jobs.tasks import run_sweep
from headshots.orders.models import Order
from headshots.runtime import Runtime, build_runtime
from headshots.web.app import create_app
from headshots.web.multipart import MAX_PAGE_FORM_BYTES, MAX_WEBHOOK_BYTES
from tests.fakes.replicate_server import WEBHOOK_SECRET
from tests.support import (
    BodyMeter,
    InstantEngine,
    LiveServer,
    make_settings,
    stream_until_answered,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
SELFIE = (FIXTURES / "obama.jpg").read_bytes()
# Only the tests of the body timeout itself use a short one: every other
# test keeps the normal timeout, so a loaded machine cannot turn its upload
# into a 408.
SHORT_BODY_TIMEOUT = 1.0
UPLOADS_PER_CLIENT = 2
# One read of the socket past a limit, at most, is what refusing costs.
ONE_READ = 1024 * 1024


def hostile_settings(tmp_path: Path, database_url: str | None, **overrides: Any) -> Any:
    return make_settings(
        tmp_path,
        database_url,
        uploads_per_client=UPLOADS_PER_CLIENT,
        replicate_webhook_secret=WEBHOOK_SECRET,  # its webhook route is live
        **overrides,
    )


@pytest.fixture
def hostile_runtime(tmp_path: Path, database_url: str | None) -> Iterator[Runtime]:
    InstantEngine.reset()
    active = build_runtime(hostile_settings(tmp_path, database_url))
    yield active
    active.close()


@pytest.fixture
def meter(hostile_runtime: Runtime) -> BodyMeter:
    return BodyMeter(create_app(hostile_runtime, run_consumer=True))


@pytest.fixture
def server(meter: BodyMeter) -> Iterator[LiveServer]:
    live = LiveServer(meter)
    yield live
    live.stop()


@pytest.fixture
def impatient(tmp_path: Path, database_url: str | None) -> Iterator[tuple[LiveServer, Runtime]]:
    """A server whose bodies must arrive within SHORT_BODY_TIMEOUT, and its runtime."""
    active = build_runtime(
        hostile_settings(tmp_path, database_url, body_timeout_seconds=SHORT_BODY_TIMEOUT)
    )
    live = LiveServer(create_app(active, run_consumer=False))
    yield live, active
    live.stop()
    active.close()


@pytest.fixture
def no_temp_files(server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary files cannot be made while the test runs: any attempt fails loudly.

    An empty folder that stays empty would not do: Linux's O_TMPFILE files,
    which tempfile.TemporaryFile makes, never show in their folder.
    """
    nowhere = tmp_path / "no-temporary-files"
    monkeypatch.setattr(tempfile, "tempdir", str(nowhere))
    return nowhere


def send_raw(port: int, data: bytes, *, wait: float = 30) -> tuple[bytes, bool]:
    """Send bytes, then read; the answer, and whether the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as connection:
        connection.sendall(data)
        return read_answer(connection)


def read_answer(connection: socket.socket) -> tuple[bytes, bool]:
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except TimeoutError:
        return received, False  # still open when the wait ran out
    except ConnectionResetError:
        pass  # what arrived before a reset is still the answer
    return received, True


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def detail_of(answer: bytes) -> str:
    return str(json.loads(answer.split(b"\r\n\r\n", 1)[1])["detail"])


def slow_upload_head(port: int, *, expect: bool = False) -> bytes:
    return (
        f"POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        + ("Expect: 100-continue\r\n" if expect else "")
        + "Content-Length: 100000\r\n\r\n"
    ).encode()


def start_slow_upload(port: int) -> socket.socket:
    """An upload whose body stalls, returned once the server is reading it.

    The server answers "100 Continue" when the app first asks for the body,
    after the guards gave the upload its slot: from then on the slot is
    taken, with no sleep guessing when.
    """
    connection = socket.create_connection(("127.0.0.1", port), timeout=60)
    connection.sendall(slow_upload_head(port, expect=True))
    interim = b""
    while b"\r\n\r\n" not in interim:
        part = connection.recv(1024)
        assert part, f"closed before 100 Continue: {interim[:100]!r}"
        interim += part
    assert interim.startswith(b"HTTP/1.1 100"), interim[:100]
    connection.sendall(b"--xyz\r\n")
    return connection


def stored(runtime: Runtime) -> tuple[int, list[Path]]:
    with runtime.sessions() as session:
        orders = session.query(Order).count()
    blobs = runtime.settings.data_dir / "blobs"
    return orders, [p for p in blobs.rglob("*") if p.is_file()] if blobs.exists() else []


def upload_order(url: str, tier: str = "starter", styles: tuple[str, ...] = ("corporate",)) -> Any:
    answer = httpx.post(
        f"{url}/api/orders",
        data={"tier": tier, "styles": list(styles)},
        files={"selfie": ("me.jpg", SELFIE, "image/jpeg")},
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


# --- bodies that never arrive ---------------------------------------------


def test_a_body_that_never_arrives_is_answered_408_and_closed(
    impatient: tuple[LiveServer, Runtime],
) -> None:
    server, runtime = impatient
    with start_slow_upload(server.port) as connection:
        answer, closed = read_answer(connection)
    assert status_of(answer) == 408
    assert b"took too long" in answer
    # The class's own header, kept by every instance: the client knows not to reuse it.
    assert b"connection: close" in answer.lower()
    assert closed
    assert stored(runtime) == (0, [])


def test_a_client_may_have_only_a_few_bodies_arriving_at_once(server: LiveServer) -> None:
    slow = []
    try:
        for _ in range(UPLOADS_PER_CLIENT):
            slow.append(start_slow_upload(server.port))
        # Refused at once: with the normal body timeout, a slot given instead
        # would leave this waiting well past the socket's 30 s.
        answer, closed = send_raw(server.port, slow_upload_head(server.port) + b"--xyz\r\n")
        assert status_of(answer) == 429
        assert "still arriving" in detail_of(answer)
        assert closed
        # Other requests from the same address are still served meanwhile.
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        for connection in slow:
            connection.close()


def test_slots_of_clients_that_gave_up_are_freed(server: LiveServer) -> None:
    for _ in range(UPLOADS_PER_CLIENT):
        start_slow_upload(server.port).close()  # the client walks away mid-body
    # The slots come back as the server sees each client go, long before the
    # normal body timeout (60 s) could free them.
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.post(
            f"{server.url}/api/orders",
            data={"tier": "starter", "styles": ["corporate"]},
            files={"selfie": ("me.jpg", SELFIE, "image/jpeg")},
            timeout=60,
        )
        if answer.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
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
        created = upload_order(server.url)
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
    created = upload_order(server.url)
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
    created = upload_order(server.url, "professional", ("corporate", "minimal"))
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
    # Swept until gone, however late that job is on a loaded machine.
    folder = hostile_runtime.settings.data_dir / "blobs" / created["id"]
    deadline = time.monotonic() + 60
    run_sweep(hostile_runtime)
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
        run_sweep(hostile_runtime)
    assert not folder.exists()


# --- oversized forms and webhooks ------------------------------------------------

A_FILE_PART = (
    b'--xyz\r\nContent-Disposition: form-data; name="csrf"; filename="big.jpg"\r\n'
    b"Content-Type: image/jpeg\r\n\r\n"
)
PAGE_FORMS = [
    "/drafts/AAAAAAAAAAAAAAAAAAAAAA",
    "/orders/AAAAAAAAAAAAAAAAAAAAAA/pay",
    "/orders/AAAAAAAAAAAAAAAAAAAAAA/delete",
    "/pay/local/lcs_AAAAAAAAAAAAAAAAAAAAAA",
]
OVERSIZED = {
    **{
        f"{path} (file)": (path, "multipart/form-data; boundary=xyz", A_FILE_PART)
        for path in PAGE_FORMS
    },
    **{
        f"{path} (urlencoded)": (path, "application/x-www-form-urlencoded", b"csrf=")
        for path in PAGE_FORMS
    },
    "payment webhook": ("/api/webhooks/local", "application/json", b'{"id": "'),
    "replicate webhook": ("/api/webhooks/replicate", "application/json", b'{"id": "'),
}


@pytest.mark.parametrize("case", sorted(OVERSIZED))
def test_oversized_forms_and_webhooks_are_refused_413_unread_and_never_spooled(
    case: str, server: LiveServer, meter: BodyMeter, no_temp_files: Path
) -> None:
    path, content_type, first = OVERSIZED[case]
    answer = stream_until_answered(server.port, path, content_type, first)
    assert status_of(answer) == 413, answer[:300]
    detail = detail_of(answer)
    assert "larger than" in detail and detail.endswith(".")
    limit = MAX_WEBHOOK_BYTES if "/webhooks/" in path else MAX_PAGE_FORM_BYTES
    assert meter.received[path] <= limit + ONE_READ  # not the 12.5 MB sent
    assert not no_temp_files.exists()


def test_a_page_upload_over_1_mb_is_read_in_memory(
    server: LiveServer, hostile_runtime: Runtime, no_temp_files: Path
) -> None:
    # Starlette's own parser would spool this photo to a temporary file.
    photo = io.BytesIO()
    Image.open(io.BytesIO(SELFIE)).save(photo, format="PNG", compress_level=0)
    assert photo.tell() > 1024 * 1024
    with httpx.Client(base_url=server.url, timeout=60) as browser:
        page = browser.get("/start")
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        answer = browser.post(
            "/start", data={"csrf": csrf}, files={"selfie": ("me.png", photo.getvalue())}
        )
    assert answer.status_code == 303, answer.text[:300]
    assert answer.headers["location"].startswith("/drafts/")
    assert not no_temp_files.exists()


# --- the API answers its bearer token only ---------------------------------------


def test_a_cross_site_request_with_the_order_cookie_changes_nothing(
    server: LiveServer, hostile_runtime: Runtime
) -> None:
    created = upload_order(server.url)
    order_id, token = created["id"], created["token"]
    # What another site can make a browser send: the cookie, not the header.
    browser = {"Origin": "https://evil.example", "Cookie": f"order_{order_id}={token}"}
    base = f"{server.url}/api/orders/{order_id}"
    assert httpx.delete(base, headers=browser).status_code == 404
    assert httpx.post(f"{base}/checkout", headers=browser).status_code == 404
    assert httpx.get(base, headers=browser).status_code == 404
    order = httpx.get(base, headers={"Authorization": f"Bearer {token}"})
    assert order.status_code == 200
    assert order.json()["status"] in ("queued", "ready")
    with hostile_runtime.sessions() as session:
        stored_order = session.get(Order, order_id)
        assert stored_order is not None and stored_order.wrapped_key is not None
        assert stored_order.checkout_session_id is None
