"""Blobs as files on a local disk: ``root/<order_id>/<name>``.

Writes are atomic: the bytes go to a hidden temp file in the same directory,
are flushed to the disk, and only then renamed over the final name, so a
crash or a full disk never leaves a half-written blob under a real name. The
temp file only ever holds what the caller passed in, which is ciphertext.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from datetime import datetime
from pathlib import Path

from headshots.storage.base import (
    BlobNotFound,
    OrderDeleted,
    StorageFullError,
    StorageUnavailable,
    check_blob_name,
    check_order_id,
)

_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
# Both prefixes start with a dot, which no valid order id or blob name can.
_TEMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".deleting-"


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def put(self, order_id: str, name: str, data: bytes) -> None:
        directory = self.root / check_order_id(order_id)
        final = directory / check_blob_name(name)
        try:
            self._make_dirs(directory)
            temp = directory / f"{_TEMP_PREFIX}{secrets.token_hex(8)}"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileNotFoundError as error:
            raise OrderDeleted() from error
        except OSError as error:
            if _is_full(error):
                raise StorageFullError() from error
            raise
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, final)
            # The rename is durable only once the directory entry is on disk.
            _fsync_dir(directory)
        except FileNotFoundError as error:
            # The order's folder went to the trash while we wrote: the order
            # was deleted, and the temp file goes with its folder.
            raise OrderDeleted() from error
        except BaseException as error:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            if isinstance(error, OSError) and _is_full(error):
                raise StorageFullError() from error
            raise

    def get(self, order_id: str, name: str) -> bytes:
        path = self.root / check_order_id(order_id) / check_blob_name(name)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError) as error:
            raise BlobNotFound() from error

    def exists(self, order_id: str, name: str) -> bool:
        return (self.root / check_order_id(order_id) / check_blob_name(name)).is_file()

    def delete_order(self, order_id: str) -> None:
        directory = self.root / check_order_id(order_id)
        # Rename first: the order's blobs disappear from their names in one
        # step, and a crash half-way through the removal leaves only a trash
        # folder that the next deletion sweeps. Overwriting the files first
        # would not help on SSDs or copy-on-write file systems; forgetting
        # the wrapped key is what makes the bytes unreadable.
        trash = self.root / f"{_TRASH_PREFIX}{secrets.token_hex(8)}"
        try:
            os.rename(directory, trash)
        except FileNotFoundError:
            pass
        else:
            _fsync_dir(self.root)
        self._empty_trash()

    def owners(self, written_before: datetime) -> list[str]:
        # A folder's time moves with every blob written into it (each put
        # creates and renames a file there).
        if not self.root.is_dir():
            return []
        cutoff = written_before.timestamp()
        found = []
        for entry in self.root.iterdir():
            if entry.name.startswith((_TEMP_PREFIX, _TRASH_PREFIX)):
                continue
            with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                if entry.is_dir() and entry.stat().st_mtime < cutoff:
                    found.append(entry.name)
        return found

    def check(self) -> None:
        probe = self.root / f"{_TEMP_PREFIX}check-{secrets.token_hex(8)}"
        try:
            self._make_dirs(self.root)
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, b"ok")
                os.fsync(fd)
            finally:
                os.close(fd)
                probe.unlink()
        except OSError as error:
            if _is_full(error):
                raise StorageFullError() from error
            raise StorageUnavailable() from error

    def _make_dirs(self, directory: Path) -> None:
        if directory.is_dir():
            return
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if directory != self.root:
            directory.mkdir(mode=0o700, exist_ok=True)
            _fsync_dir(self.root)

    def _empty_trash(self) -> None:
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if entry.name.startswith(_TRASH_PREFIX):
                _remove_tree(entry)


def _remove_tree(path: Path) -> None:
    # Another process may be emptying the same trash right now, and a writer
    # that has not yet noticed its order is gone may still add a temp file
    # (it fails at its rename): try again rather than fail the deletion.
    for _ in range(5):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            continue
    shutil.rmtree(path, ignore_errors=True)


def _is_full(error: OSError) -> bool:
    return error.errno in _FULL


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
