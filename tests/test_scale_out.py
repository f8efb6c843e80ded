"""Scale-out, proven with processes that share nothing but PostgreSQL, Redis and a bucket.

Two `headshots serve` and two `headshots worker` processes, each started in
its own empty folder with its own data dir, run one order from upload to
deletion: upload on web 1, progress and previews on web 2, the work done by
a worker that is killed mid-order and another that finishes it, payment
through web 2, downloads from web 1, deletion on web 2. Afterwards the bucket
holds nothing of the order and no data dir holds a file at all.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.s3server import SeaweedS3
from tests.support import (
    DATABASES,
    auth,
    confirm_local_payment,
    credentials_env,
    new_master_key,
)

ROOT = Path(__file__).resolve().parents[1]
SELFIE = ROOT / "tests" / "fixtures" / "obama.jpg"
RATE_PER_HOUR = 4

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.skipif("postgres" not in DATABASES, reason="needs PostgreSQL"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """Processes of the service, each in its own empty folder."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.processes: list[subprocess.Popen[bytes]] = []
        self.folders: list[Path] = []

    def start(self, name: str, *args: str, **extra: str) -> subprocess.Popen[bytes]:
        folder = self.root / name
        folder.mkdir()
        self.folders.append(folder)
        env = {**self.env, "HEADSHOTS_DATA_DIR": str(folder / "data"), **extra}
        log = (self.root / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "headshots", *args],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def serve(self, name: str) -> str:
        port = free_port()
        self.start(name, "serve", HEADSHOTS_PORT=str(port))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError(f"{name} did not start: {self.log(name)}")

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]

    def files_left(self) -> list[str]:
        return [str(p) for folder in self.folders for p in folder.rglob("*") if p.is_file()]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def cluster(tmp_path: Path, s3_server: SeaweedS3, s3_url: str, redis_url: str) -> Iterator[Cluster]:
    import secrets

    import sqlalchemy

    from tests.support import POSTGRES_URL, unavailable

    schema = "t_" + secrets.token_hex(6)
    admin = sqlalchemy.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    except sqlalchemy.exc.OperationalError as error:
        admin.dispose()
        unavailable(f"PostgreSQL at {POSTGRES_URL} is not reachable: {type(error).__name__}")
    keep = ("PATH", "HOME", "LANG", "CI")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(s3_server.env())
    env.update(credentials_env())
    env.update(
        PYTHONPATH=str(ROOT / "src"),
        HEADSHOTS_DATABASE_URL=f"{POSTGRES_URL}?options=-csearch_path%3D{schema}",
        HEADSHOTS_QUEUE_URL=redis_url,
        HEADSHOTS_BLOB_URL=s3_url,
        HEADSHOTS_MASTER_KEY=new_master_key(),
        HEADSHOTS_ENGINE="studio",
        HEADSHOTS_OUTPUT_WIDTH="256",
        HEADSHOTS_OUTPUT_HEIGHT="320",
        HEADSHOTS_PREVIEW_MAX="256",
        HEADSHOTS_CONCURRENCY="1",
        HEADSHOTS_STUDIO_CALLS="1",
        HEADSHOTS_STUCK_AFTER_SECONDS="4",
        HEADSHOTS_LEASE_SECONDS="4",
        HEADSHOTS_LEASE_RENEW_SECONDS="1",
        HEADSHOTS_SWEEP_SECONDS="1",
        HEADSHOTS_UPLOAD_RATE_PER_HOUR=str(RATE_PER_HOUR),
    )
    running = Cluster(tmp_path / "machines", env)
    running.root.mkdir()
    try:
        yield running
    finally:
        running.stop()
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def progress(web: str, order_id: str, token: str) -> dict[str, object]:
    answer = httpx.get(f"{web}/api/orders/{order_id}", headers=auth(token), timeout=10)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_one_order_across_processes_that_share_no_disk(
    cluster: Cluster, s3_server: SeaweedS3, s3_url: str
) -> None:
    bucket, prefix = s3_url.removeprefix("s3://").split("/", 1)
    web1, web2 = cluster.serve("web1"), cluster.serve("web2")
    for web in (web1, web2):
        ready = httpx.get(f"{web}/readyz", timeout=30)
        assert ready.json()["checks"]["storage"] == "ok", ready.text

    # Upload on web 1, before any worker runs.
    created = httpx.post(
        f"{web1}/api/orders",
        data={"tier": "professional", "styles": ["corporate", "friendly"]},
        files={"selfie": ("me.jpg", SELFIE.read_bytes(), "image/jpeg")},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    order_id, token = created.json()["id"], created.json()["token"]

    # Worker A starts the order and dies (kill -9) part-way through.
    worker_a = cluster.start("worker-a", "worker")
    deadline = time.monotonic() + 120
    while True:
        variations = progress(web2, order_id, token)["variations"]
        assert isinstance(variations, list)
        made = [v for v in variations if v["status"] in ("finishing", "done")]
        if made:
            break
        assert time.monotonic() < deadline, cluster.log("worker-a")
        time.sleep(0.05)
    os.kill(worker_a.pid, signal.SIGKILL)
    worker_a.wait()
    assert progress(web2, order_id, token)["status"] != "ready", "worker A finished too soon"

    # Worker B, on another "machine", finishes it once A's leases run out.
    cluster.start("worker-b", "worker")
    deadline = time.monotonic() + 240
    while (body := progress(web2, order_id, token))["status"] != "ready":
        assert time.monotonic() < deadline, cluster.log("worker-b")
        time.sleep(0.2)
    variations = body["variations"]
    assert isinstance(variations, list) and len(variations) == 8
    assert all(v["status"] == "done" for v in variations), variations

    # Previews read on web 2; the clean image is 402 until paid.
    first = variations[0]["id"]
    preview = httpx.get(
        f"{web2}/api/orders/{order_id}/variations/{first}/preview", headers=auth(token), timeout=30
    )
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    unpaid = httpx.get(
        f"{web1}/api/orders/{order_id}/variations/{first}/download", headers=auth(token)
    )
    assert unpaid.status_code == 402

    # Payment through web 2 (the local test checkout, as a browser uses it).
    with httpx.Client(base_url=web2, timeout=30) as browser:
        checkout = browser.post(f"/api/orders/{order_id}/checkout", headers=auth(token))
        assert checkout.status_code == 200, checkout.text
        paid = confirm_local_payment(browser, checkout.json()["checkout_url"])
        assert paid.status_code in (200, 303), paid.text

    # Downloads and the zip from web 1.
    image = httpx.get(
        f"{web1}/api/orders/{order_id}/variations/{first}/download", headers=auth(token), timeout=30
    )
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    archive = httpx.get(
        f"{web1}/api/orders/{order_id}/download.zip", headers=auth(token), timeout=60
    )
    assert archive.status_code == 200
    assert len(zipfile.ZipFile(io.BytesIO(archive.content)).namelist()) >= 8
    assert s3_server.keys(bucket, f"{prefix}/{order_id}/")

    # Delete on web 2: nothing of the order anywhere afterwards.
    deleted = httpx.delete(f"{web2}/api/orders/{order_id}", headers=auth(token), timeout=30)
    assert deleted.status_code == 204
    assert s3_server.keys(bucket, f"{prefix}/{order_id}/") == []
    for web in (web1, web2):
        gone = httpx.get(
            f"{web}/api/orders/{order_id}/variations/{first}/preview", headers=auth(token)
        )
        assert gone.status_code == 404
    assert cluster.files_left() == []

    # Metrics from either web process agree on what the database knows.
    for web in (web1, web2):
        text = httpx.get(f"{web}/metrics", timeout=30).text
        assert 'headshots_shreds_done{reason="deleted"} 1.0' in text
        assert order_id not in text

    # The upload limit is counted once across both web processes: one upload
    # above, then the rest of the hour's allowance alternating between them.
    answers = [
        httpx.post(f"{web}/api/orders", data={"tier": "professional"}).status_code
        for web in (web1, web2, web1, web2, web1)
    ]
    assert answers[: RATE_PER_HOUR - 1] == [422] * (RATE_PER_HOUR - 1)  # no photo, but counted
    assert answers[RATE_PER_HOUR - 1 :] == [429] * (len(answers) - RATE_PER_HOUR + 1)
