"""The landing page's samples: real studio headshots of people in their own clothes.

Run: PYTHONPATH=src .venv/bin/python -m bench.samples
Rewrites src/headshots/web/samples/ from nothing: one STYLE.jpg per style
(480 x 600, at most MAX_BYTES), samples.json naming the engine that made
them (the pages show them only with that engine) and PROVENANCE.md naming
each picture's source photo, its licence, the engine and the style. The
sources are licensed photos copied into bench/sample_photos/ (see its
PROVENANCE.md). Run it again whenever the studio engine's rendering
changes. Prints JSON: each file written and its size in bytes.
"""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from headshots.config import Settings
from headshots.engines.base import Rendered, get_engine
from headshots.imaging.selfie import prepare_selfie
from headshots.styles import STYLE_IDS, get_style
from headshots.web.samples import INDEX, SHIPPED, SIZE

PHOTOS = Path(__file__).parent / "sample_photos"
ENGINE = "studio"
SEED = 7
# The pages load several at once, on phones too.
MAX_BYTES = 60_000


@dataclass(frozen=True)
class Sitter:
    photo: str
    source: str
    licence: str


SITTERS = {
    "alison": Sitter(
        "ons_alison-pritchard-featured.jpg",
        "npm @ons/design-system 72.11.0, img/large/alison-pritchard-featured.jpg",
        "MIT, Crown Copyright ONS (the package's licence; a staff portrait)",
    ),
    "charles": Sitter(
        "softui_charles.jpg",
        "npm soft-ui-design-system 1.0.4, assets/img/charles.jpg",
        "MIT (the package's licence; the photo is uncredited stock)",
    ),
    "profile": Sitter(
        "sbpersonal_profile.png",
        "npm startbootstrap-personal 1.0.1, dist/assets/profile.png",
        "MIT (the package's licence; the photo is uncredited stock)",
    ),
}
# Which sitter shows which style: each sitter in two looks, each of the
# landing page's four styles on someone in ordinary clothes.
CAST = {
    "corporate": "alison",
    "friendly": "alison",
    "executive": "charles",
    "creative": "charles",
    "startup": "profile",
    "minimal": "profile",
}


def small_jpeg(image: Image.Image) -> bytes:
    """The best JPEG quality that stays under MAX_BYTES."""
    for quality in range(88, 40, -4):
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=quality, optimize=True)
        if buffer.tell() <= MAX_BYTES:
            return buffer.getvalue()
    raise RuntimeError("a sample stays over MAX_BYTES even at low quality")


def provenance(written: dict[str, int]) -> str:
    lines = [
        "# Sample pictures",
        "",
        "Real outputs of the offline `studio` engine (no generative model), made by",
        "`PYTHONPATH=src .venv/bin/python -m bench.samples` from licensed photos of",
        "people in their own clothes; the studio engine keeps the clothes, so the",
        "samples show what a person gets. The pages show them only when the",
        f"configured engine is `{ENGINE}` (`{INDEX}`). Seed {SEED}, {SIZE[0]} x {SIZE[1]} px.",
        "The source photos and their provenance are in `bench/sample_photos/`.",
        "",
        "| file | style | engine | source photo | from | licence |",
        "|---|---|---|---|---|---|",
    ]
    for style_id in written:
        sitter = SITTERS[CAST[style_id]]
        lines.append(
            f"| {style_id}.jpg | {style_id} | {ENGINE} | {sitter.photo} | {sitter.source} "
            f"| {sitter.licence} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    assert set(CAST) == set(STYLE_IDS)
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data))
        engine = get_engine(settings, ENGINE)
        prepared = {
            name: prepare_selfie((PHOTOS / sitter.photo).read_bytes(), settings)
            for name, sitter in SITTERS.items()
        }
        images: dict[str, bytes] = {}
        for style_id in STYLE_IDS:
            outcome = engine.generate(prepared[CAST[style_id]], get_style(style_id), [SEED], SIZE)
            if not isinstance(outcome[0], Rendered):
                raise RuntimeError(f"the studio engine made no {style_id} sample: {outcome[0]}")
            images[style_id] = small_jpeg(outcome[0].image)
    # Only now, with every picture made, is the old set replaced.
    for old in [*SHIPPED.glob("*.jpg"), SHIPPED / INDEX, SHIPPED / "PROVENANCE.md"]:
        old.unlink(missing_ok=True)
    SHIPPED.mkdir(exist_ok=True)
    for style_id, data_bytes in images.items():
        (SHIPPED / f"{style_id}.jpg").write_bytes(data_bytes)
    index = {"engine": ENGINE, "seed": SEED, "styles": {s: SITTERS[CAST[s]].photo for s in images}}
    (SHIPPED / INDEX).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    written = {style_id: len(data_bytes) for style_id, data_bytes in images.items()}
    (SHIPPED / "PROVENANCE.md").write_text(provenance(written), encoding="utf-8")
    print(json.dumps({"folder": str(SHIPPED), "bytes": written}, indent=2))


if __name__ == "__main__":
    main()
