from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from headshots.storage.base import (
    InvalidBlobAddress,
    StorageFullError,
    StorageUnavailable,
)
from headshots.storage.local import LocalBlobStore

ORDER = "Ab3_x-9"


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def everything_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_files_and_folders_are_private_and_no_temp_file_remains(
    store: LocalBlobStore,
) -> None:
    old = os.umask(0o022)  # a typical, permissive umask
    try:
        for index in range(5):
            store.put(ORDER, f"v{index}.png", secrets.token_bytes(1000))
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    assert stat.S_IMODE((store.root / ORDER).stat().st_mode) == 0o700
    assert everything_under(store.root) == [ORDER] + [f"{ORDER}/v{i}.png" for i in range(5)]
    for path in (store.root / ORDER).iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_deleting_an_order_removes_all_its_blobs_and_only_its_blobs(
    store: LocalBlobStore,
) -> None:
    store.put(ORDER, "selfie.png", b"a")
    store.put(ORDER, "v1.preview.jpg", b"b")
    store.put("keep", "selfie.png", b"c")
    store.delete_order(ORDER)
    assert everything_under(store.root) == ["keep", "keep/selfie.png"]
    assert not store.exists(ORDER, "selfie.png")
    store.delete_order(ORDER)  # again: nothing to do, no error
    store.delete_order("never-existed")
    assert store.get("keep", "selfie.png") == b"c"


def test_a_deletion_interrupted_earlier_is_finished_by_the_next(store: LocalBlobStore) -> None:
    store.put(ORDER, "selfie.png", b"a")
    # What a crash between the rename and the removal leaves behind.
    os.rename(store.root / ORDER, store.root / ".deleting-0123456789abcdef")
    store.delete_order("another")
    assert everything_under(store.root) == []


BAD_ORDER_IDS = [
    "",
    ".",
    "..",
    "../x",
    "a/b",
    "a\\b",
    "a\x00b",
    "/etc",
    "a b",
    "ü",
    "x" * 65,
    "a\n",
]
BAD_NAMES = [*BAD_ORDER_IDS, ".hidden", ".tmp-0123", "../../etc/passwd", "A/.."]

OPERATIONS: dict[str, Callable[[LocalBlobStore, str, str], object]] = {
    "put": lambda s, o, n: s.put(o, n, b"data"),
    "get": lambda s, o, n: s.get(o, n),
    "exists": lambda s, o, n: s.exists(o, n),
    "delete_order": lambda s, o, n: s.delete_order(o),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("order_id", BAD_ORDER_IDS)
def test_path_like_order_ids_are_refused_without_touching_the_disk(
    tmp_path: Path, operation: str, order_id: str
) -> None:
    outside = tmp_path / "x"
    outside.mkdir()
    (outside / "v1.png").write_bytes(b"not yours")
    store = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(InvalidBlobAddress):
        OPERATIONS[operation](store, order_id, "v1.png")
    assert not store.root.exists()
    assert everything_under(tmp_path) == ["x", "x/v1.png"]


@pytest.mark.parametrize("operation", ["put", "get", "exists"])
@pytest.mark.parametrize("name", BAD_NAMES)
def test_path_like_blob_names_are_refused_without_touching_the_disk(
    store: LocalBlobStore, operation: str, name: str
) -> None:
    with pytest.raises(InvalidBlobAddress):
        OPERATIONS[operation](store, ORDER, name)
    assert not store.root.exists()


def test_the_readiness_check_passes_on_a_writable_disk(store: LocalBlobStore) -> None:
    store.check()
    assert everything_under(store.root) == []  # the probe file is gone


def test_the_readiness_check_fails_when_nothing_can_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    with pytest.raises(StorageUnavailable):
        LocalBlobStore(blocker / "blobs").check()


# --- a really full disk ---

# Runs in a child process, because the file size limit applies to the whole
# process. With SIGXFSZ ignored, a write past the limit fails with EFBIG, as
# a write to a full disk fails with ENOSPC.
FILE_SIZE_LIMIT_CHILD = """
import json, resource, signal, sys
from pathlib import Path
from headshots.storage.base import StorageFullError
from headshots.storage.local import LocalBlobStore

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
store = LocalBlobStore(Path(sys.argv[1]))
store.put("order", "small.png", b"s" * 1000)
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
results = {}
for name in ("big.png", "small.png"):
    try:
        store.put("order", name, b"b" * (1024 * 1024))
        results[name] = "written"
    except StorageFullError as error:
        results[name] = [type(error).__name__, error.status_code, str(error)]
print(json.dumps(results))
"""


def test_a_write_past_the_file_size_limit_fails_cleanly_and_keeps_the_old_blob(
    tmp_path: Path,
) -> None:
    root = tmp_path / "blobs"
    run = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_LIMIT_CHILD, str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    refusal = ["StorageFullError", 507, "The server is out of storage space; try again later."]
    assert json.loads(run.stdout) == {"big.png": refusal, "small.png": refusal}
    # No half-written blob under any name, no temp file, and the blob that
    # was being replaced is still whole.
    assert everything_under(root) == ["order", "order/small.png"]
    assert (root / "order" / "small.png").read_bytes() == b"s" * 1000


def test_a_full_disk_fails_cleanly_and_leaves_no_partial_blob(tiny_disk: Path) -> None:
    store = LocalBlobStore(tiny_disk / "blobs")
    store.put(ORDER, "selfie.png", b"s" * 1000)
    with pytest.raises(StorageFullError) as refused:
        store.put(ORDER, "v1.png", secrets.token_bytes(1024 * 1024))
    assert refused.value.status_code == 507
    assert everything_under(store.root) == [ORDER, f"{ORDER}/selfie.png"]
    # The space of the failed write is given back: a small blob still fits.
    store.put(ORDER, "v2.png", b"x" * 1000)
    assert store.get(ORDER, "selfie.png") == b"s" * 1000
