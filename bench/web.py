"""Web benchmark (decision 0003), against a real `headshots serve` over loopback.

(a) upload -> preflight result: a ~5 MB JPEG selfie posted through the upload
    page's form until the page with the preflight findings has arrived;
(b) weight of each page without images: HTML + CSS + JS bytes as served.

    .venv/bin/python -m bench.web [--runs 7]

Prints JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import statistics
import time
from typing import Any

import httpx
from PIL import Image

from bench.server import ROOT, Server

FIXTURE = ROOT / "tests" / "fixtures" / "obama.jpg"
TARGET_BYTES = 5_000_000


def five_megabyte_selfie() -> bytes:
    """The fixture at 12 MP with a camera's grain, saved at high quality: about 5 MB.

    A plain upscale compresses too well to reach a phone photo's size without
    going past the 40 MP intake limit, so sensor-like noise is added.
    """
    import numpy as np

    source = Image.open(FIXTURE).convert("RGB")
    width = 3000
    height = round(source.height * width / source.width)
    pixels = np.asarray(source.resize((width, height), Image.Resampling.LANCZOS), dtype=np.int16)
    grain = np.random.default_rng(6).normal(0, 2.0, pixels.shape).astype(np.int16)
    noisy = Image.fromarray(np.clip(pixels + grain, 0, 255).astype(np.uint8))
    data = b""
    for quality in range(70, 100):
        buffer = io.BytesIO()
        noisy.save(buffer, format="JPEG", quality=quality)
        data = buffer.getvalue()
        if len(data) >= TARGET_BYTES:
            break
    return data


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token"
    return found.group(1)


def upload_to_preflight(client: httpx.Client, photo: bytes) -> tuple[float, str]:
    token = csrf(client.get("/start").text)
    started = time.perf_counter()
    sent = client.post(
        "/start", data={"csrf": token}, files={"selfie": ("me.jpg", photo, "image/jpeg")}
    )
    result = client.get(sent.headers["location"])
    seconds = time.perf_counter() - started
    assert sent.status_code == 303 and result.status_code == 200, sent.text[:200]
    assert "data-preflight" in result.text
    return seconds, str(sent.headers["location"])


def weight(client: httpx.Client, path: str) -> dict[str, int]:
    page = client.get(path)
    assets = re.findall(
        r'<(?:script|link)[^>]+(?:src|href)="(/static/[^"]+\.(?:css|js))"', page.text
    )
    sizes = {"html": len(page.content)}
    for asset in assets:
        sizes[asset.rsplit("/", 1)[1]] = len(client.get(asset).content)
    sizes["total"] = sum(sizes.values())
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    photo = five_megabyte_selfie()
    server = Server({"HEADSHOTS_ENGINE": "studio"})
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            upload_to_preflight(client, photo)  # warm-up: models load on first use
            times = []
            draft = ""
            for _ in range(max(5, args.runs)):
                seconds, draft = upload_to_preflight(client, photo)
                times.append(seconds)

            choose_weight = weight(client, draft)  # before the draft becomes an order
            chosen = client.post(
                draft,
                data={
                    "csrf": csrf(client.get(draft).text),
                    "tier": "starter",
                    "styles": "corporate",
                },
                follow_redirects=True,
            )
            order = str(chosen.url.path)
            deadline = time.monotonic() + 120
            while client.get(f"{order}/progress").json()["status"] != "ready":
                if time.monotonic() > deadline:
                    raise RuntimeError("the order did not finish")
                time.sleep(0.2)
            paid = client.post(
                f"{order}/pay", data={"csrf": csrf(client.get(order).text)}, follow_redirects=True
            )
            checkout = str(paid.url.path)
            pages = {
                "landing": "/",
                "upload": "/start",
                "order (previews)": order,
                "checkout (local)": checkout,
                "delete": f"{order}/delete",
                "privacy": "/privacy",
                "guide": "/guide",
            }
            weights: dict[str, Any] = {name: weight(client, path) for name, path in pages.items()}
            weights["choose"] = choose_weight
    finally:
        server.stop()
    print(
        json.dumps(
            {
                "photo_bytes": len(photo),
                "upload_to_preflight_seconds": {
                    "median": round(statistics.median(times), 3),
                    "min": round(min(times), 3),
                    "max": round(max(times), 3),
                    "runs": len(times),
                },
                "page_weight_bytes_without_images": weights,
                "heaviest_page_bytes": max(w["total"] for w in weights.values()),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
