"""A team on the studio engine, its members joining a few at a time (decision 0017).

Everything goes through a real `headshots serve` (embedded mode, studio
engine, defaults), over HTTP:

- each accepted photo alone first, as the one member of a team of its own
  (corporate: 4 headshots, then its pick), with nothing else running: upload
  to ready as its page's event stream shows it, that photo's single-order
  time (a 3 MP photo takes longer than a 200 px one), and upload to the
  server at rest again, its busy time (the final PNGs and the pick's follow
  ready);
- a team of ``--members`` seats in the same style, paid through the test
  checkout; the members join ``--concurrency`` at a time (a pool of that
  many threads), each uploading a selfie of ``tests/fixtures/faces-more``
  (only those the preflight accepts, in turn), waiting for its order to be
  ready and giving its first headshot to the organiser. Per member: the
  upload's answer and ready, both counted from the upload's first byte;
- the organiser's zip of every pick: GET download.zip, median of 3, its
  size and number of files (one per member).

The bound a member's wait is read against: its own photo's single-order
time plus the busy times of the members still in flight when it joined
(the queue ahead of it), as if the server did one member's work at a time.

Run: .venv/bin/python -m bench.teams [--members 50] [--concurrency 5]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle
from pathlib import Path
from typing import Any

import httpx

from bench.pipeline import CpuMeter, one_order, streamed, timings
from bench.server import Server

FACES = Path(__file__).parents[1] / "tests" / "fixtures" / "faces-more"
STYLE = "corporate"
ZIP_RUNS = 3
TICK = 0.1  # seconds between readings of the server's CPU
MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}


def accepted_photos() -> list[tuple[str, bytes]]:
    """The faces-more photos the studio engine's upload takes, by the same preflight."""
    # The server's own check, run here before it starts (its models load once).
    os.environ.setdefault("HEADSHOTS_DATA_DIR", tempfile.mkdtemp(prefix="headshots-bench-"))
    from headshots.config import Settings
    from headshots.engines.base import engine_repairs_crop
    from headshots.errors import HeadshotsError
    from headshots.imaging.selfie import prepare_selfie

    settings = Settings(engine="studio")
    repairs = engine_repairs_crop(settings, "studio")
    photos = []
    for path in sorted(FACES.glob("*.*")):
        if path.suffix.lower() not in MIME:
            continue
        data = path.read_bytes()
        try:
            prepare_selfie(data, settings, repairs_crop=repairs)
        except HeadshotsError:
            continue
        photos.append((path.name, data))
    if not photos:
        raise RuntimeError("the preflight accepted none of the faces-more photos")
    return photos


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def paid_team(url: str, client: httpx.Client, seats: int) -> dict[str, Any]:
    """A team of ``seats`` in one style, paid through the local test checkout."""
    answer = client.post(
        f"{url}/api/teams", json={"name": "Bench Ltd", "seats": seats, "styles": [STYLE]}
    )
    answer.raise_for_status()
    team = dict(answer.json())
    checkout = client.post(
        f"{url}/api/teams/{team['id']}/checkout", headers=auth(team["admin_token"])
    )
    checkout.raise_for_status()
    # The test checkout's form carries a CSRF token tied to this client's cookie.
    page = client.get(checkout.json()["checkout_url"])
    marker = 'name="csrf" value="'
    csrf = page.text.split(marker, 1)[1].split('"', 1)[0]
    confirmed = client.post(
        checkout.json()["checkout_url"], data={"csrf": csrf}, follow_redirects=False
    )
    if confirmed.status_code != 303:
        raise RuntimeError(f"the test payment was not confirmed: {confirmed.status_code}")
    return team


def member(url: str, code: str, number: int, photo: tuple[str, bytes]) -> dict[str, Any]:
    """Join with a selfie, wait for ready, give the first headshot to the organiser."""
    suffix = Path(photo[0]).suffix.lower()
    with httpx.Client() as client:
        started = time.perf_counter()
        answer = client.post(
            f"{url}/api/orders",
            data={"team": code, "display_name": f"Member {number:02d}"},
            files={"selfie": (f"me{suffix}", photo[1], MIME[suffix])},
            timeout=120,
        )
        answer.raise_for_status()
        answered = time.perf_counter() - started
        order = answer.json()
        timings(streamed(url, order, client, timeout=3600))
        ready = time.perf_counter() - started
        body = client.get(f"{url}/api/orders/{order['id']}", headers=auth(order["token"])).json()
        first = body["variations"][0]["id"]
        picked = client.post(
            f"{url}/api/orders/{order['id']}/variations/{first}/pick",
            headers=auth(order["token"]),
            timeout=60,
        )
        picked.raise_for_status()
    return {
        "photo": photo[0],
        "started": started,
        "upload_s": answered,
        "ready_s": ready,
        "ready_at": started + ready,
    }


def alone(url: str, code: str, photo: tuple[str, bytes], meter: CpuMeter) -> dict[str, float]:
    """One member of this photo with the server to itself: ready, and busy until it rests.

    Busy includes what follows ready (the final PNGs, the pick): work a
    member who joins meanwhile waits behind.
    """
    meter.settle()
    joined = member(url, code, 0, photo)
    return {"ready_s": joined["ready_s"], "busy_s": working_until(meter) - joined["started"]}


def working_until(meter: CpuMeter, quiet: float = 1.0) -> float:
    """When the server last worked (over a tenth of a core), once it has rested ``quiet`` s."""
    last_work = time.perf_counter()
    before = meter.seconds()
    while time.perf_counter() - last_work < quiet:
        time.sleep(TICK)
        now = meter.seconds()
        if now - before > 0.1 * TICK:
            last_work = time.perf_counter()
        before = now
    return last_work


def queue_bounds(done: list[dict[str, Any]], single: dict[str, dict[str, float]]) -> list[float]:
    """Each member's bound: its own photo's ready alone, and the busy time of those ahead.

    Ahead: joined before it and not yet ready when it joined.
    """
    bounds = []
    for this in done:
        ahead = [other for other in done if other["started"] < this["started"] < other["ready_at"]]
        queue = sum(single[other["photo"]]["busy_s"] for other in ahead)
        bounds.append(single[this["photo"]]["ready_s"] + queue)
    return bounds


def organiser_zip(url: str, team: dict[str, Any]) -> dict[str, Any]:
    seconds, size, files = [], 0, 0
    with httpx.Client() as client:
        for _ in range(ZIP_RUNS):
            started = time.perf_counter()
            answer = client.get(
                f"{url}/api/teams/{team['id']}/download.zip",
                headers=auth(team["admin_token"]),
                timeout=120,
            )
            answer.raise_for_status()
            seconds.append(time.perf_counter() - started)
            size = len(answer.content)
            with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
                files = len(archive.namelist())
    return {
        "zip_s_median": round(statistics.median(seconds), 3),
        "zip_s_all": [round(s, 3) for s in seconds],
        "zip_mb": round(size / 1e6, 2),
        "zip_files": files,
    }


def spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "median": round(statistics.median(ordered), 2),
        "p90": round(p90, 2),
        "max": round(ordered[-1], 2),
    }


def run(members: int, concurrency: int) -> dict[str, Any]:
    photos = accepted_photos()
    server = Server({"HEADSHOTS_ENGINE": "studio"})
    try:
        one_order(server.url, "starter", [STYLE])  # warm-up: the server's models load
        meter = CpuMeter(server)
        with httpx.Client() as organiser:
            calibration = paid_team(server.url, organiser, len(photos))
            team = paid_team(server.url, organiser, members)
        alone_code = str(calibration["invite_url"]).rsplit("/t/", 1)[1]
        single = {photo[0]: alone(server.url, alone_code, photo, meter) for photo in photos}
        code = str(team["invite_url"]).rsplit("/t/", 1)[1]
        turns = cycle(photos)
        joins = [(number, next(turns)) for number in range(1, members + 1)]
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            done = list(pool.map(lambda join: member(server.url, code, *join), joins))
        wall = time.perf_counter() - started
        with httpx.Client() as organiser:
            seen = organiser.get(
                f"{server.url}/api/teams/{team['id']}", headers=auth(team["admin_token"])
            ).json()
        picked = sum(m["status"] == "picked" for m in seen["members"])
        zipped = organiser_zip(server.url, team)
    finally:
        server.stop()
    ready = [d["ready_s"] for d in done]
    bounds = queue_bounds(done, single)
    over = [r - b for r, b in zip(ready, bounds, strict=True)]
    return {
        "members": members,
        "concurrency": concurrency,
        "photos_accepted": len(photos),
        "single_order_ready_s": spread([one["ready_s"] for one in single.values()]),
        "single_order_busy_s": spread([one["busy_s"] for one in single.values()]),
        "member_upload_s": spread([d["upload_s"] for d in done]),
        "member_ready_s": spread(ready),
        "queue_bound_s": spread(bounds),
        "members_within_bound": sum(o <= 0 for o in over),
        "most_over_bound_s": round(max(over), 2),
        "over_bound": [
            {
                "photo": d["photo"],
                "joined_s": round(d["started"] - started, 2),
                "ready_s": round(d["ready_s"], 2),
                "bound_s": round(b, 2),
            }
            for d, b, o in zip(done, bounds, over, strict=True)
            if o > 0
        ],
        "wall_s": round(wall, 2),
        "seats_used": seen["used"],
        "members_picked": picked,
        **zipped,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run(args.members, args.concurrency), indent=2))


if __name__ == "__main__":
    main()
