"""Proof of privacy for a whole order run through the API.

After an order has run, nothing under the data dir holds the selfie's
pixels, bytes or EXIF in the clear; after DELETE or expiry its blobs and key
are gone, and a copy of its files taken before cannot be decrypted with
anything the service still keeps.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from headshots.orders.models import Order
from headshots.runtime import Runtime
from headshots.storage.keys import DecryptionError, Keyring, load_master_key, open_sealed
from tests.support import auth, upload, wait_ready

FIXTURES = Path(__file__).parent / "fixtures"
MARKER = b"PRIVACY-MARKER-7f3a"


@pytest.fixture(scope="module")
def marked_selfie() -> bytes:
    """A real selfie whose EXIF carries a marker and GPS coordinates."""
    image = Image.open(FIXTURES / "obama.jpg")
    exif = Image.Exif()
    exif[0x010F] = MARKER.decode()  # Make
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (48.0, 51.0, 29.0)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


def every_file(root: Path) -> list[bytes]:
    return [path.read_bytes() for path in root.rglob("*") if path.is_file()]


def pixel_windows(photo: bytes, size: int) -> list[bytes]:
    """Runs of raw RGB bytes from textured rows of the photo at working size."""
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    if max(image.size) > size:
        image.thumbnail((size, size))
    rows = np.asarray(image)
    height = rows.shape[0]
    return [rows[y, 100:140].tobytes() for y in (height // 3, height // 2, 2 * height // 3)]


def test_no_file_holds_the_selfie_in_the_clear(
    client: TestClient, runtime: Runtime, marked_selfie: bytes
) -> None:
    order = upload(client, marked_selfie, tier="starter", styles=("corporate",)).json()
    wait_ready(client, order["id"], order["token"])
    files = every_file(runtime.settings.data_dir)
    assert len(files) >= 5  # database, queue, key, selfie and outputs
    upload_chunks = [marked_selfie[i : i + 64] for i in (2000, 20_000, len(marked_selfie) // 2)]
    windows = pixel_windows(marked_selfie, runtime.settings.working_size)
    for content in files:
        assert MARKER not in content
        assert b"me.jpg" not in content  # the upload's file name
        assert order["token"].encode() not in content
        for chunk in upload_chunks + windows:
            assert chunk not in content


def test_after_delete_a_copy_of_the_files_cannot_be_decrypted(
    client: TestClient, runtime: Runtime, marked_selfie: bytes, tmp_path: Path
) -> None:
    other = upload(client, marked_selfie, tier="starter", styles=("minimal",)).json()
    order = upload(client, marked_selfie, tier="starter", styles=("corporate",)).json()
    wait_ready(client, order["id"], order["token"])
    folder = runtime.settings.data_dir / "blobs" / order["id"]
    backup = tmp_path / "backup"
    shutil.copytree(folder, backup)
    sealed = (backup / "selfie.png").read_bytes()
    keyring = Keyring(load_master_key(runtime.settings))
    with runtime.sessions() as session:
        wrapped = (session.get(Order, order["id"]) or Order()).wrapped_key
    assert wrapped is not None
    # Before deletion the copy opens, so a failure below means something.
    key = keyring.unwrap(order["id"], wrapped)
    assert open_sealed(key, order["id"], "selfie.png", sealed).startswith(b"\x89PNG")

    assert (
        client.delete(f"/api/orders/{order['id']}", headers=auth(order["token"])).status_code == 204
    )
    assert not folder.exists()
    with runtime.sessions() as session:
        kept = {row.id: row.wrapped_key for row in session.scalars(select(Order))}
    assert kept[order["id"]] is None
    assert kept[other["id"]] is not None
    # All the service still holds: the master key and other orders' keys.
    candidates = [load_master_key(runtime.settings)] + [
        keyring.unwrap(order_id, other_key)
        for order_id, other_key in kept.items()
        if other_key is not None
    ]
    for candidate in candidates:
        with pytest.raises(DecryptionError):
            open_sealed(candidate, order["id"], "selfie.png", sealed)


def test_the_expiry_sweep_forgets_the_key_too(
    client: TestClient, runtime: Runtime, marked_selfie: bytes
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from headshots.jobs.tasks import run_sweep
    from headshots.orders.db import transaction
    from headshots.orders.models import utcnow

    order = upload(client, marked_selfie, tier="starter", styles=("minimal",)).json()
    wait_ready(client, order["id"], order["token"])
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Order).where(Order.id == order["id"]).values(expires_at=utcnow() - timedelta(1))
        )
    run_sweep(runtime)
    with runtime.sessions() as session:
        tombstone = session.get(Order, order["id"])
        assert tombstone is not None
        assert tombstone.wrapped_key is None
        assert tombstone.preflight is None
    assert not (runtime.settings.data_dir / "blobs" / order["id"]).exists()
    for content in every_file(runtime.settings.data_dir):
        assert MARKER not in content
