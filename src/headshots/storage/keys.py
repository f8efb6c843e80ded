"""Envelope encryption: the master key, per-order data keys and sealed blobs.

Each order gets its own random 256-bit data key. The database keeps it only
wrapped (AES-256-GCM under the master key, bound to the order id); every blob
is AES-256-GCM under the data key, bound to its order id and name. Forgetting
the wrapped key therefore makes every copy of the order's blobs unreadable,
backups included (crypto-shredding).

Layouts (the version byte is also part of the associated data, so a blob
cannot be replayed under another format):

    wrapped key = version (1) | nonce (12) | AES-GCM(data key) (32 + 16 tag)
    sealed blob = version (1) | nonce (12) | AES-GCM(plaintext) (n + 16 tag)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import re
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from headshots.config import Settings
from headshots.errors import ConfigurationError, HeadshotsError
from headshots.storage.base import check_blob_name, check_order_id

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
WRAP_VERSION = 1
SEAL_VERSION = 1
WRAPPED_KEY_BYTES = 1 + NONCE_BYTES + KEY_BYTES + TAG_BYTES
DEV_KEY_FILE = "master.key"

MAKE_KEY_COMMAND = (
    'python -c "import base64,secrets;'
    'print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"'
)
# 32 bytes are 43 base64 characters plus one '=' of padding (optional here).
_KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{43}=?")


class DecryptionError(HeadshotsError):
    """Authenticated decryption failed: wrong key, wrong place, or altered bytes."""

    status_code = 500
    code = "decryption_failed"
    message = "A stored file of this order could not be read; it may be damaged."


class BlobCorrupt(DecryptionError):
    code = "blob_corrupt"


class WrappedKeyInvalid(DecryptionError):
    code = "key_invalid"
    message = "The key of this order could not be read; its files are no longer readable."


def parse_master_key(text: str, source: str = "HEADSHOTS_MASTER_KEY") -> bytes:
    """32 bytes from URL-safe base64, refusing anything else with a how-to."""
    candidate = text.strip()
    # Python's base64 decoder silently skips characters outside the alphabet;
    # check the exact shape first so a mangled key is refused, not shortened.
    if not _KEY_TEXT.fullmatch(candidate):
        raise ConfigurationError(
            f"{source} must be 32 random bytes in URL-safe base64 (43 or 44 characters); "
            f"make one with: {MAKE_KEY_COMMAND}"
        )
    try:
        key = base64.urlsafe_b64decode(candidate + "=" * (-len(candidate) % 4))
    except (binascii.Error, ValueError) as error:
        raise ConfigurationError(
            f"{source} is not valid URL-safe base64; make a key with: {MAKE_KEY_COMMAND}"
        ) from error
    if len(key) != KEY_BYTES:
        raise ConfigurationError(
            f"{source} must decode to exactly 32 bytes; make one with: {MAKE_KEY_COMMAND}"
        )
    return key


def load_master_key(settings: Settings) -> bytes:
    """The master key from settings, or in development mode from the data dir."""
    if settings.master_key is not None:
        return parse_master_key(settings.master_key.get_secret_value())
    if not settings.dev_mode:
        raise ConfigurationError(
            "HEADSHOTS_MASTER_KEY is not set. Every stored photo is encrypted with it: "
            f"make one with {MAKE_KEY_COMMAND}, keep it in your secret store and set "
            "HEADSHOTS_MASTER_KEY before starting (or set HEADSHOTS_DEV_MODE=true on a "
            "development machine to generate one into the data directory)."
        )
    return _development_key(settings.data_dir / DEV_KEY_FILE)


def _development_key(path: Path) -> bytes:
    if not path.exists():
        _create_key_file(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    # Like ssh with a private key: a key others can read protects nothing.
    if mode & 0o077:
        raise ConfigurationError(
            f"The development master key {path} can be read by other users "
            f"(mode {mode:o}); run: chmod 600 {path}"
        )
    return parse_master_key(path.read_text(encoding="ascii"), source=str(path))


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n"
    # Write a private temp file, then hard-link it to the final name: the
    # link is atomic and refuses an existing file, so two processes starting
    # at once agree on one key and neither reads a half-written file.
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    log.warning(
        "Generated a development master key in %s. It is for development only: "
        "set HEADSHOTS_MASTER_KEY on any real server.",
        path,
    )


def _wrap_aad(order_id: str) -> bytes:
    return b"headshots/data-key\x00" + bytes([WRAP_VERSION]) + order_id.encode()


def _seal_aad(order_id: str, name: str) -> bytes:
    # Ids and names cannot contain NUL (checked), so this joining is unambiguous.
    return b"headshots/blob\x00" + bytes([SEAL_VERSION]) + f"{order_id}\x00{name}".encode()


class Keyring:
    """Makes and unwraps per-order data keys under the master key."""

    __slots__ = ("_master",)

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise ValueError("the master key must be 32 bytes")
        self._master = AESGCM(master_key)

    def __repr__(self) -> str:
        return "Keyring(<master key hidden>)"

    def new_data_key(self, order_id: str) -> tuple[bytes, bytes]:
        """A fresh data key and its wrapped form (the only form to store)."""
        check_order_id(order_id)
        key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(NONCE_BYTES)
        wrapped = (
            bytes([WRAP_VERSION]) + nonce + self._master.encrypt(nonce, key, _wrap_aad(order_id))
        )
        return key, wrapped

    def unwrap(self, order_id: str, wrapped: bytes) -> bytes:
        check_order_id(order_id)
        if len(wrapped) != WRAPPED_KEY_BYTES or wrapped[0] != WRAP_VERSION:
            raise WrappedKeyInvalid()
        nonce, body = wrapped[1 : 1 + NONCE_BYTES], wrapped[1 + NONCE_BYTES :]
        try:
            return self._master.decrypt(nonce, body, _wrap_aad(order_id))
        except InvalidTag as error:
            raise WrappedKeyInvalid() from error


def seal(key: bytes, order_id: str, name: str, plaintext: bytes) -> bytes:
    """Encrypt one blob under an order's data key, bound to its order and name."""
    aad = _seal_aad(check_order_id(order_id), check_blob_name(name))
    # A random 96-bit nonce per blob: an order holds a few dozen blobs, far
    # below the 2**32 messages per key where random nonces start to collide.
    nonce = secrets.token_bytes(NONCE_BYTES)
    return bytes([SEAL_VERSION]) + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, order_id: str, name: str, sealed: bytes) -> bytes:
    """The plaintext of a sealed blob; :class:`BlobCorrupt` if anything differs."""
    aad = _seal_aad(check_order_id(order_id), check_blob_name(name))
    if len(sealed) < 1 + NONCE_BYTES + TAG_BYTES or sealed[0] != SEAL_VERSION:
        raise BlobCorrupt()
    nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag as error:
        raise BlobCorrupt() from error
