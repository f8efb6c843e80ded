"""The web flow's upload to preflight, through a real `headshots serve` (decision 0008).

What a person waits for after choosing a photo on the upload page: the
POST of the form (the photo read, its face found, the preflight, the draft
stored) until the answer that leads to the findings. With ``--against`` a
second checkout (another commit) is served beside this one and the runs
alternate, so both see the same machine.

    git worktree add /tmp/before COMMIT
    .venv/bin/python -m bench.upload [--runs 21] [--against /tmp/before]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from bench.server import ROOT, Server

PHOTOS = [ROOT / "tests" / "fixtures" / name for name in ("obama.jpg", "biden.jpg")]


def upload_once(url: str, photo: bytes) -> float:
    """Seconds from sending the upload form to its answer."""
    with httpx.Client(base_url=url, timeout=60) as client:
        page = client.get("/start")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token, "no CSRF token on the upload page"
        started = time.perf_counter()
        answer = client.post(
            "/start",
            data={"csrf": token.group(1)},
            files={"selfie": ("IMG_0042.jpg", photo, "image/jpeg")},
            follow_redirects=False,
        )
        seconds = time.perf_counter() - started
    assert answer.status_code == 303, answer.text[:300]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    photos = [path.read_bytes() for path in PHOTOS]
    servers = {"this": Server({"HEADSHOTS_ENGINE": "studio"})}
    if args.against:
        servers["against"] = Server({"HEADSHOTS_ENGINE": "studio"}, root=args.against.resolve())
    times: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for server in servers.values():  # warm: models load on the first upload
            upload_once(server.url, photos[0])
        for run in range(args.runs):
            for name, server in servers.items():
                times[name].append(upload_once(server.url, photos[run % len(photos)]))
    finally:
        for server in servers.values():
            server.stop()
    results: dict[str, Any] = {
        name: round(statistics.median(samples) * 1000, 1) for name, samples in times.items()
    }
    if "against" in results:
        results["this_adds_ms"] = round(results["this"] - results["against"], 1)
    print(json.dumps({"runs": args.runs, "upload_to_preflight_median_ms": results}, indent=2))


if __name__ == "__main__":
    main()
