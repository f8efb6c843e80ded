from __future__ import annotations

import base64
import secrets
import shutil
from pathlib import Path

import pytest
from PIL import Image

from headshots.config import Settings
from headshots.errors import ConfigurationError
from headshots.storage.base import BlobNotFound
from headshots.storage.keys import BlobCorrupt, Keyring, WrappedKeyInvalid, open_sealed
from headshots.storage.local import LocalBlobStore
from headshots.storage.vault import (
    EncryptedBlobs,
    blob_store_from_settings,
    blob_store_from_url,
    encrypted_blobs_from_settings,
)

ORDER = "order-A_1"
OTHER = "order-B_2"


@pytest.fixture
def master() -> bytes:
    return secrets.token_bytes(32)


@pytest.fixture
def blobs(tmp_path: Path, master: bytes) -> EncryptedBlobs:
    return EncryptedBlobs(LocalBlobStore(tmp_path / "blobs"), Keyring(master))


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def pieces(data: bytes, count: int = 64, size: int = 64) -> list[bytes]:
    """Up to ``count`` 64-byte pieces spread evenly over ``data``, first and last included."""
    last = len(data) - size
    starts = sorted({last * i // max(1, count - 1) for i in range(count)})
    return [data[start : start + size] for start in starts]


def test_a_blob_round_trips_through_encryption(blobs: EncryptedBlobs) -> None:
    wrapped = blobs.new_wrapped_key(ORDER)
    blobs.put(ORDER, wrapped, "selfie.png", b"pixels")
    assert blobs.get(ORDER, wrapped, "selfie.png") == b"pixels"
    assert blobs.exists(ORDER, "selfie.png")
    with pytest.raises(BlobNotFound):
        blobs.get(ORDER, wrapped, "other.png")


def test_no_file_on_disk_holds_the_selfie_pixels_or_exif(
    blobs: EncryptedBlobs, tmp_path: Path, fixtures: Path
) -> None:
    original = (fixtures / "obama.jpg").read_bytes()
    with Image.open(fixtures / "obama.jpg") as image:
        exif = image.info["exif"]
        pixels = image.convert("RGB").tobytes()
    wrapped = blobs.new_wrapped_key(ORDER)
    blobs.put(ORDER, wrapped, "upload.jpg", original)
    blobs.put(ORDER, wrapped, "pixels.raw", pixels)
    on_disk = [path.read_bytes() for path in files_under(tmp_path)]
    assert len(on_disk) == 2
    for secret in (original, exif, pixels):
        for data in on_disk:
            assert not any(piece in data for piece in pieces(secret))
    assert blobs.get(ORDER, wrapped, "upload.jpg") == original


def test_a_blob_file_moved_to_another_name_or_order_does_not_open(
    blobs: EncryptedBlobs, tmp_path: Path
) -> None:
    root = tmp_path / "blobs"
    mine, theirs = blobs.new_wrapped_key(ORDER), blobs.new_wrapped_key(OTHER)
    blobs.put(ORDER, mine, "v1.png", b"mine")
    blobs.put(OTHER, theirs, "v1.png", b"theirs")
    shutil.copy(root / ORDER / "v1.png", root / ORDER / "v2.png")
    with pytest.raises(BlobCorrupt):
        blobs.get(ORDER, mine, "v2.png")
    shutil.copy(root / ORDER / "v1.png", root / OTHER / "v1.png")
    with pytest.raises(BlobCorrupt):
        blobs.get(OTHER, theirs, "v1.png")
    with pytest.raises(WrappedKeyInvalid):
        blobs.get(OTHER, mine, "v1.png")


def test_a_shredded_order_cannot_be_read_from_a_copy_taken_before(
    blobs: EncryptedBlobs, tmp_path: Path, master: bytes
) -> None:
    root = tmp_path / "blobs"
    wrapped = blobs.new_wrapped_key(ORDER)
    for name in ("selfie.png", "v1.png", "v1.preview.jpg"):
        blobs.put(ORDER, wrapped, name, secrets.token_bytes(2000))
    backup = tmp_path / "backup"
    shutil.copytree(root / ORDER, backup)

    # With the wrapped key, the copy is readable: shredding is what changes that.
    key = Keyring(master).unwrap(ORDER, wrapped)
    sealed = (backup / "v1.png").read_bytes()
    assert open_sealed(key, ORDER, "v1.png", sealed) == blobs.get(ORDER, wrapped, "v1.png")

    blobs.shred(ORDER)
    del wrapped, key  # the caller forgets the wrapped key with the order row
    assert not (root / ORDER).exists()
    assert files_under(root) == []

    # All the service still keeps is the master key; from it, a restarted
    # service can only make new data keys, and none of them opens the copy.
    keyring = Keyring(master)
    for _ in range(20):
        candidate, _wrapped = keyring.new_data_key(ORDER)
        with pytest.raises(BlobCorrupt):
            open_sealed(candidate, ORDER, "v1.png", sealed)
    with pytest.raises(BlobCorrupt):
        open_sealed(master, ORDER, "v1.png", sealed)
    with pytest.raises(BlobNotFound):
        blobs.get(ORDER, blobs.new_wrapped_key(ORDER), "v1.png")


def test_shredding_is_idempotent_and_spares_other_orders(blobs: EncryptedBlobs) -> None:
    mine, theirs = blobs.new_wrapped_key(ORDER), blobs.new_wrapped_key(OTHER)
    blobs.put(ORDER, mine, "selfie.png", b"a")
    blobs.put(OTHER, theirs, "selfie.png", b"b")
    blobs.shred(ORDER)
    blobs.shred(ORDER)
    assert not blobs.exists(ORDER, "selfie.png")
    assert blobs.get(OTHER, theirs, "selfie.png") == b"b"


# --- built from settings ---


def test_the_embedded_store_keeps_blobs_in_the_data_dir(tmp_path: Path) -> None:
    master = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    settings = Settings(data_dir=tmp_path / "data", master_key=master)
    blobs = encrypted_blobs_from_settings(settings)
    blobs.check()
    wrapped = blobs.new_wrapped_key(ORDER)
    blobs.put(ORDER, wrapped, "selfie.png", b"x")
    assert (tmp_path / "data" / "blobs" / ORDER / "selfie.png").is_file()
    store = blob_store_from_settings(settings)
    assert isinstance(store, LocalBlobStore) and store.root == tmp_path / "data" / "blobs"


def test_without_a_master_key_the_blobs_cannot_be_built(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", master_key=None, dev_mode=False)
    with pytest.raises(ConfigurationError, match="HEADSHOTS_MASTER_KEY is not set"):
        encrypted_blobs_from_settings(settings)


def test_store_locations(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    store = blob_store_from_url(f"file://{tmp_path}/elsewhere", settings)
    assert isinstance(store, LocalBlobStore) and store.root == tmp_path / "elsewhere"
    with pytest.raises(ConfigurationError, match="must look like s3://BUCKET"):
        blob_store_from_url("s3://ab/prefix", settings)
    with pytest.raises(ConfigurationError, match="ftp is not supported"):
        blob_store_from_url("ftp://host/path", settings)
