"""A real `headshots serve` in a subprocess, on a free port, for benchmarks."""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def credentials_env(folder: Path) -> dict[str, str]:
    from headshots.credentials.keys import write_development_chain

    chain, key = write_development_chain(folder / "c2pa")
    return {"HEADSHOTS_C2PA_CERT": str(chain), "HEADSHOTS_C2PA_KEY": str(key)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """Embedded mode with a fresh data dir and master key; `env` adds settings."""

    def __init__(self, env: dict[str, str], *, data: str | None = None, root: Path = ROOT) -> None:
        # A restart passes the data dir (and so the master key) of the one before.
        self.data = data or tempfile.mkdtemp(prefix="headshots-bench-")
        key_file = Path(self.data) / "bench.key"
        if not key_file.exists():
            key_file.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "headshots", "serve"],
            env={
                **os.environ,
                # This checkout's source first (or another's, to compare
                # commits), whatever the venv's install points at.
                "PYTHONPATH": os.pathsep.join((str(root), str(root / "src"))),
                "HEADSHOTS_DATA_DIR": self.data,
                "HEADSHOTS_MASTER_KEY": key_file.read_text(),
                "HEADSHOTS_PORT": str(self.port),
                # A benchmark is one client sending many uploads.
                "HEADSHOTS_UPLOAD_RATE_PER_HOUR": "100000",
                "HEADSHOTS_UPLOADS_PER_CLIENT": "1000",
                # The operator's Content Credentials: a development chain.
                **credentials_env(Path(self.data)),
                **env,
            },
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("headshots serve did not start")

    def peak_rss_mb(self) -> float:
        """The process's high-water mark of resident memory so far."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def kill(self) -> None:
        """SIGKILL: the process ends mid-work, as in a crash."""
        self.process.kill()
        self.process.wait(timeout=30)
