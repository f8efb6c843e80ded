"""Engines and helpers for the order-service tests.

These engines are real implementations of the Engine protocol that skip the
image work: the order service, the queue, storage and the API around them
run for real.
"""

from __future__ import annotations

import base64
import io
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps

from headshots.config import Settings
from headshots.credentials.keys import write_development_chain
from headshots.engines.base import (
    EngineDefaults,
    Failed,
    Outcome,
    Rendered,
    Shape,
    register_engine,
)
from headshots.imaging.selfie import PreparedSelfie
from headshots.styles import Style


class InstantEngine(EngineDefaults):
    """Returns the selfie framed to the output size at once."""

    name: ClassVar[str] = "instant"
    description: ClassVar[str] = "Test engine: the selfie, resized."
    generative: ClassVar[bool] = False
    rerolls_help: ClassVar[bool] = False
    repairs_crop: ClassVar[bool] = False
    changes_clothes: ClassVar[bool] = False

    # Styles whose first call fails, and how long each image takes.
    fail_once: ClassVar[set[str]] = set()
    delay: ClassVar[float] = 0.0
    calls: ClassVar[dict[str, int]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def shape(self) -> Shape:
        return Shape(calls=self.settings.concurrency or 4, batch=1)

    def generate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: tuple[int, int]
    ) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for seed in seeds:
            with self._lock:
                count = self.calls.get(style.id, 0)
                self.calls[style.id] = count + 1
            if self.delay:
                time.sleep(self.delay)
            if style.id in self.fail_once and count == 0:
                outcomes.append(
                    Failed(seed=seed, reason="The test engine refused this one.", code="test")
                )
                continue
            image = ImageOps.fit(selfie.image, size, Image.Resampling.BILINEAR)
            outcomes.append(Rendered(seed=seed, image=image, seconds=self.delay))
        return outcomes

    @classmethod
    def reset(cls) -> None:
        cls.fail_once = set()
        cls.delay = 0.0
        cls.calls = {}


register_engine("instant", InstantEngine)

DATABASES = [
    name.strip()
    for name in os.environ.get("HEADSHOTS_TEST_DATABASES", "sqlite,postgres").split(",")
    if name.strip()
]
POSTGRES_URL = os.environ.get(
    "HEADSHOTS_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("HEADSHOTS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def unavailable(reason: str) -> None:
    """Skip loudly on a laptop without the server; fail in CI, where it must exist."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must provide it)")
    pytest.skip(reason)


def new_master_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


_CHAIN: list[tuple[Path, Path]] = []


def signing_credentials() -> tuple[Path, Path]:
    """An operator's certificate chain and key for tests: one CA and signer per run."""
    if not _CHAIN:
        folder = Path(tempfile.mkdtemp(prefix="headshots-c2pa-")) / "chain"
        _CHAIN.append(write_development_chain(folder))
    return _CHAIN[0]


def credentials_env() -> dict[str, str]:
    """The same chain as environment variables, for a service in a subprocess."""
    chain, key = signing_credentials()
    return {"HEADSHOTS_C2PA_CERT": str(chain), "HEADSHOTS_C2PA_KEY": str(key)}


def make_settings(tmp_path: Path, database_url: str | None, **overrides: Any) -> Settings:
    chain, key = signing_credentials()
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "master_key": new_master_key(),
        "database_url": database_url,
        "engine": "instant",
        "concurrency": 2,
        "c2pa_cert": chain,
        "c2pa_key": key,
        # Starlette's TestClient sends "Host: testserver"; one test poses as https.
        "allowed_hosts": "testserver,127.0.0.1,localhost,headshots.example",
        **overrides,
    }
    return Settings(**values)


def upload(
    client: TestClient,
    photo: bytes,
    *,
    tier: str | None = "professional",
    styles: tuple[str, ...] = ("corporate", "friendly"),
    filename: str = "me.jpg",
) -> Any:
    data: dict[str, Any] = {"styles": list(styles)}
    if tier is not None:
        data["tier"] = tier
    return client.post(
        "/api/orders", data=data, files={"selfie": (filename, io.BytesIO(photo), "image/jpeg")}
    )


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def confirm_local_payment(client: TestClient, url: str) -> Any:
    """Press "Confirm test payment" on the local checkout page, as a browser would.

    The form carries a CSRF token tied to the browser's cookie, so the page
    is loaded first and its token sent back.
    """
    import re

    page = client.get(url)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the test checkout page has no CSRF token"
    return client.post(url, data={"csrf": found.group(1)}, follow_redirects=False)


def wait_ready(client: TestClient, order_id: str, token: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/orders/{order_id}", headers=auth(token)).json()
        if body["status"] == "ready":
            return body
        time.sleep(0.05)
    raise AssertionError(f"order not ready after {timeout} s: {body['progress']}")


class LiveServer:
    """The app served by a real uvicorn on 127.0.0.1, in a thread."""

    def __init__(self, app: Any) -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


# Who is in each face fixture (tests/fixtures/PROVENANCE.md); the group photo
# adds five more people.
FIXTURE_PEOPLE = {
    "obama.jpg": "obama",
    "obama2.jpg": "obama",
    "obama3.jpg": "obama",
    "obama_partial_face.jpg": "obama",
    "biden.jpg": "biden",
    "grace_hopper.jpg": "hopper",
    "astronaut.png": "collins",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class BodyMeter:
    """ASGI wrapper counting the request body bytes the app took in, per path.

    What the server read is what an oversized body cost it; unlike what a
    client managed to send (which kernel buffers inflate), it does not depend
    on how fast the server got round to answering.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.received: dict[str, int] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def counting() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                self.received[path] = self.received.get(path, 0) + len(message.get("body", b""))
            return message

        await self.app(scope, counting, send)


def stream_until_answered(
    port: int, path: str, content_type: str, first: bytes, *, chunks: int = 200
) -> bytes:
    """POST a chunked body that goes on (``chunks`` x 64 KiB after ``first``) until answered.

    Stops sending once the server answers or closes, ends the body if it
    never does, and returns the answer (status line, headers and JSON body).
    """
    import select
    import socket

    chunk = b"\xff" * 65536
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(head + b"%x\r\n%s\r\n" % (len(first), first))
        try:
            for _ in range(chunks):
                if select.select([connection], [], [], 0)[0]:
                    break  # answered (or closed) before the end
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                connection.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading and closed: its answer is waiting
        try:
            while b"}" not in answer:  # the JSON body may follow the headers
                part = connection.recv(65536)
                if not part:
                    break
                answer += part
        except ConnectionResetError:
            pass
    return answer
