"""The only `headshots serve` is killed mid-order and started again on its data dir.

Its predecessor's leases would hold the work until they ran out; the new
process sees the dead one's heartbeat lapse and takes the work back, so
the order is ready within 30 seconds of the restart.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import credentials_env, free_port

ROOT = Path(__file__).parents[2]
SELFIE = (ROOT / "tests" / "fixtures" / "obama.jpg").read_bytes()


def serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    code = (
        "import tests.support as support;"
        "support.InstantEngine.delay = 2.0;"
        "from headshots.cli import app;"
        f"app(['serve', '--port', '{port}'])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **credentials_env(), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("headshots serve did not start")


def status(port: int, order: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.get(
        f"http://127.0.0.1:{port}/api/orders/{order['id']}",
        headers={"Authorization": f"Bearer {order['token']}"},
        timeout=10,
    )
    body: dict[str, Any] = answer.json()
    return body


def test_a_killed_server_finishes_its_order_soon_after_a_restart(
    tmp_path: Path, database_url: str | None
) -> None:
    env = {
        "HEADSHOTS_DATA_DIR": str(tmp_path / "data"),
        "HEADSHOTS_MASTER_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "HEADSHOTS_DATABASE_URL": database_url or "",
        "HEADSHOTS_ENGINE": "instant",
        # Four calls at once, two seconds each: a 24-image order takes 12 s.
        "HEADSHOTS_CONCURRENCY": "4",
        # Leases longer than the 30 s allowed: only taking the dead process's
        # work back when its heartbeat lapses can make it in time.
        "HEADSHOTS_LEASE_SECONDS": "120",
        "HEADSHOTS_LEASE_RENEW_SECONDS": "10",
    }
    first_port = free_port()
    first = serve(env, first_port)
    try:
        answer = httpx.post(
            f"http://127.0.0.1:{first_port}/api/orders",
            data={"tier": "executive", "styles": ["corporate", "creative", "startup"]},
            files={"selfie": ("me.jpg", SELFIE, "image/jpeg")},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        order = answer.json()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            progress = status(first_port, order)["progress"]
            if progress["running"] and progress["done"] + progress["finishing"]:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the order never got going: {progress}")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert progress["running"] > 0  # work held by the dead process

    second_port = free_port()
    second = serve(env, second_port)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            body = status(second_port, order)
            if body["status"] == "ready":
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"not ready 30 s after the restart: {body['progress']}")
        assert body["progress"]["done"] == 12
    finally:
        second.send_signal(signal.SIGINT)
        try:
            second.wait(timeout=20)
        except subprocess.TimeoutExpired:
            second.kill()
