"""Cost of Content Credentials: signing one clean PNG and one preview JPEG.

Run: .venv/bin/python -m bench.credentials [--runs N]
Prints JSON: median milliseconds to add the XMP marking and sign (studio and
generative manifests), and the bytes the marking and manifest add. The
render is a real photo scaled to 1024 x 1280; the preview is made from it as
the service makes it. Signs with a development chain in a temp folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from headshots.credentials.keys import read_credentials, write_development_chain
from headshots.credentials.manifest import made_by
from headshots.credentials.signing import ImageSigner, sign_jpeg, sign_png
from headshots.imaging.codecs import encode_png
from headshots.imaging.watermark import watermarked_preview

FIXTURE = Path(__file__).parents[1] / "tests" / "fixtures" / "obama.jpg"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    runs = max(5, parser.parse_args().runs)
    with Image.open(FIXTURE) as source:
        render = source.convert("RGB").resize((1024, 1280))
    png = encode_png(render)
    jpeg = watermarked_preview(render)
    chain, key = write_development_chain(Path(tempfile.mkdtemp()) / "c2pa")
    signer = ImageSigner(read_credentials(chain, key))
    facts = {
        "studio": made_by("studio", "corporate", {}, generative=False),
        "replicate": made_by(
            "replicate",
            "corporate",
            {"model": "black-forest-labs/flux-kontext-pro"},
            generative=True,
        ),
    }
    result: dict[str, object] = {"runs": runs, "png_bytes": len(png), "jpeg_bytes": len(jpeg)}
    for name, made in facts.items():
        timings: dict[str, list[float]] = {"png": [], "jpeg": []}
        for _ in range(runs):
            started = time.perf_counter()
            signed_png = sign_png(signer, made, png)
            timings["png"].append(time.perf_counter() - started)
            started = time.perf_counter()
            signed_jpeg = sign_jpeg(signer, made, jpeg)
            timings["jpeg"].append(time.perf_counter() - started)
        result[name] = {
            "png_ms": round(statistics.median(timings["png"]) * 1000, 2),
            "jpeg_ms": round(statistics.median(timings["jpeg"]) * 1000, 2),
            "png_added_bytes": len(signed_png) - len(png),
            "jpeg_added_bytes": len(signed_jpeg) - len(jpeg),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
