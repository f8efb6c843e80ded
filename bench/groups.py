"""Group photos refused, the single people in them accepted (decision 0008).

Prints one JSON object: for the tuning part and the held-apart part of
``tests/group_set.py`` separately, how many group cases the preflight
refuses as ``several_faces`` and how many single-person crops it accepts
(for the studio engine, which is the stricter), the cases that missed, and
how long face detection takes per group photo and per 1024 px portrait.

Run: .venv/bin/python -m bench.groups [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from tests.group_set import cases
from tests.selfie_set import SINGLES, source

from headshots.imaging.faces import detect_faces
from headshots.imaging.preflight import preflight


def evaluate() -> dict[str, Any]:
    parts: dict[str, dict[str, list[str]]] = {}
    for case in cases():
        report = preflight(case.build(), repairs_crop=False)
        part = parts.setdefault("tuning" if case.tuning else "held_apart", {})
        if case.kind == "group":
            right = "several_faces" in [finding.code for finding in report.errors]
        else:
            right = report.ok
        part.setdefault(f"{case.kind}_all", []).append(case.name)
        if right:
            part.setdefault(f"{case.kind}_right", []).append(case.name)
        else:
            part.setdefault("missed", []).append(f"{case.name}: {report.codes}")
    out: dict[str, Any] = {}
    for name, part in parts.items():
        out[name] = {
            "groups_refused_as_several_faces": (
                f"{len(part.get('group_right', []))}/{len(part.get('group_all', []))}"
            ),
            "single_people_accepted": (
                f"{len(part.get('single_right', []))}/{len(part.get('single_all', []))}"
            ),
            "missed": part.get("missed", []),
        }
    return out


def timing(runs: int) -> dict[str, float]:
    groups = [case.build() for case in cases() if case.kind == "group" and "pair" not in case.name]
    portraits = [source(name, 1024) for name in SINGLES]
    detect_faces(portraits[0])  # load the models
    result = {}
    for label, images in (("group_photos", groups), ("portraits_1024", portraits)):
        times = []
        for _ in range(runs):
            for image in images:
                started = time.perf_counter()
                detect_faces(image)
                times.append(time.perf_counter() - started)
        result[f"detect_median_ms_{label}"] = round(1000 * statistics.median(times), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps({**evaluate(), **timing(args.runs)}, indent=2))


if __name__ == "__main__":
    main()
