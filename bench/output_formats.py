"""Which output format to ask a hosted model for: decode time here, and what it keeps.

Every hosted output is decoded on this machine (engines/replicate/outputs.py
decodes with OpenCV), so its format decides part of the CPU each output
costs. A headshot of about one megapixel (what the models answer for a
1024 x 1280 order) is encoded the way a provider would: PNG (zlib level 6,
Pillow's default), JPEG and WebP at quality 80 (Replicate's default
``output_quality``) and 95. For each: the bytes, the median decode time and
the PSNR against the lossless pixels (what the final PNG can keep at best).

Run: .venv/bin/python -m bench.output_formats [--runs N]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

FIXTURE = Path(__file__).parents[1] / "tests" / "fixtures" / "obama.jpg"
# What FLUX.1 Kontext answers for 4:5.
OUTPUT_SIZE = (880, 1104)


def encodings(image: Image.Image) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, fmt, options in (
        ("png", "PNG", {"compress_level": 6}),
        ("jpg q80", "JPEG", {"quality": 80}),
        ("jpg q95", "JPEG", {"quality": 95}),
        ("webp q80", "WEBP", {"quality": 80}),
        ("webp q95", "WEBP", {"quality": 95}),
    ):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **options)
        out[name] = buffer.getvalue()
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    runs = max(5, parser.parse_args().runs)
    with Image.open(FIXTURE) as source:
        fitted = ImageOps.fit(source.convert("RGB"), OUTPUT_SIZE, centering=(0.5, 0.35))
    # Fresh pixels only: a provider's output carries no ICC profile of ours.
    image = Image.new("RGB", fitted.size)
    image.paste(fitted)
    reference = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)
    results = {}
    for name, data in encodings(image).items():
        buffer = np.frombuffer(data, np.uint8)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            decoded = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
            times.append(time.perf_counter() - started)
        results[name] = {
            "kilobytes": round(len(data) / 1024, 1),
            "decode_ms_median": round(statistics.median(times) * 1000, 2),
            "psnr_db": round(psnr(reference, decoded), 1),
        }
    print(json.dumps({"size": list(OUTPUT_SIZE), "runs": runs, "formats": results}, indent=2))


if __name__ == "__main__":
    main()
