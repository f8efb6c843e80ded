"""Time to make a watermarked preview from a 1024 x 1280 render.

Run: .venv/bin/python -m bench.watermark [--runs N]
Prints JSON with medians in milliseconds: "first" builds the mark layer for
a new size (once per size per process), "repeat" reuses it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from PIL import Image

from headshots.imaging import watermark

FIXTURE = Path(__file__).parents[1] / "tests" / "fixtures" / "obama.jpg"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    runs = max(5, parser.parse_args().runs)
    with Image.open(FIXTURE) as source:
        render = source.convert("RGB").resize((1024, 1280))
    first, repeat = [], []
    for _ in range(runs):
        watermark._overlay.cache_clear()
        watermark._label.cache_clear()
        started = time.perf_counter()
        watermark.watermarked_preview(render)
        first.append(time.perf_counter() - started)
        started = time.perf_counter()
        watermark.watermarked_preview(render)
        repeat.append(time.perf_counter() - started)
    print(
        json.dumps(
            {
                "input": list(render.size),
                "runs": runs,
                "first_ms": round(statistics.median(first) * 1000, 2),
                "repeat_ms": round(statistics.median(repeat) * 1000, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
