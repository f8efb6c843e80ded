from __future__ import annotations

import base64
import logging
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from headshots.config import Settings
from headshots.errors import ConfigurationError
from headshots.storage.base import InvalidBlobAddress
from headshots.storage.keys import (
    BlobCorrupt,
    Keyring,
    WrappedKeyInvalid,
    load_master_key,
    open_sealed,
    seal,
)

ORDER = "Zx3-q_9AbC"
OTHER_ORDER = "Zx3-q_9AbD"


def key_text(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def settings(tmp_path: Path, master_key: str | None, *, dev_mode: bool = False) -> Settings:
    return Settings(data_dir=tmp_path / "data", master_key=master_key, dev_mode=dev_mode)


# --- sealed blobs ---


def test_a_sealed_blob_opens_with_its_key_order_and_name() -> None:
    key = secrets.token_bytes(32)
    plaintext = secrets.token_bytes(10_000)
    sealed = seal(key, ORDER, "selfie.png", plaintext)
    assert open_sealed(key, ORDER, "selfie.png", sealed) == plaintext
    assert plaintext[:64] not in sealed


def test_sealing_the_same_bytes_twice_gives_different_ciphertexts() -> None:
    key = secrets.token_bytes(32)
    assert seal(key, ORDER, "a.png", b"same") != seal(key, ORDER, "a.png", b"same")


def test_an_empty_blob_round_trips() -> None:
    key = secrets.token_bytes(32)
    assert open_sealed(key, ORDER, "a.png", seal(key, ORDER, "a.png", b"")) == b""


def test_a_blob_moved_to_another_order_or_name_does_not_open() -> None:
    key = secrets.token_bytes(32)
    sealed = seal(key, ORDER, "v1.png", b"pixels")
    with pytest.raises(BlobCorrupt):
        open_sealed(key, OTHER_ORDER, "v1.png", sealed)
    with pytest.raises(BlobCorrupt):
        open_sealed(key, ORDER, "v2.png", sealed)
    with pytest.raises(BlobCorrupt):
        open_sealed(secrets.token_bytes(32), ORDER, "v1.png", sealed)


def test_every_altered_byte_is_detected() -> None:
    key = secrets.token_bytes(32)
    sealed = seal(key, ORDER, "v1.png", b"a small blob of pixels")
    for position in range(len(sealed)):
        altered = bytearray(sealed)
        altered[position] ^= 0x01
        with pytest.raises(BlobCorrupt):
            open_sealed(key, ORDER, "v1.png", bytes(altered))
    for cut in (0, 1, 13, 28, len(sealed) - 1):
        with pytest.raises(BlobCorrupt):
            open_sealed(key, ORDER, "v1.png", sealed[:cut])


def test_path_like_names_are_refused_before_sealing() -> None:
    key = secrets.token_bytes(32)
    with pytest.raises(InvalidBlobAddress):
        seal(key, ORDER, "../v1.png", b"x")
    with pytest.raises(InvalidBlobAddress):
        seal(key, "a/b", "v1.png", b"x")


# --- wrapped data keys ---


def test_a_wrapped_key_unwraps_to_the_data_key() -> None:
    keyring = Keyring(secrets.token_bytes(32))
    key, wrapped = keyring.new_data_key(ORDER)
    assert len(key) == 32
    assert keyring.unwrap(ORDER, wrapped) == key
    assert key not in wrapped
    assert keyring.new_data_key(ORDER)[0] != key


def test_a_wrapped_key_is_useless_for_another_order_or_without_the_master_key() -> None:
    master = secrets.token_bytes(32)
    _, wrapped = Keyring(master).new_data_key(ORDER)
    with pytest.raises(WrappedKeyInvalid):
        Keyring(master).unwrap(OTHER_ORDER, wrapped)
    with pytest.raises(WrappedKeyInvalid):
        Keyring(secrets.token_bytes(32)).unwrap(ORDER, wrapped)
    # The same master key in a fresh keyring (a restarted service) still works.
    Keyring(master).unwrap(ORDER, wrapped)


def test_a_tampered_wrapped_key_is_refused() -> None:
    keyring = Keyring(secrets.token_bytes(32))
    _, wrapped = keyring.new_data_key(ORDER)
    for position in range(len(wrapped)):
        altered = bytearray(wrapped)
        altered[position] ^= 0x80
        with pytest.raises(WrappedKeyInvalid):
            keyring.unwrap(ORDER, bytes(altered))
    with pytest.raises(WrappedKeyInvalid):
        keyring.unwrap(ORDER, wrapped[:-1])


def test_the_keyring_does_not_show_its_key() -> None:
    master = secrets.token_bytes(32)
    shown = repr(Keyring(master))
    assert key_text(master) not in shown and master.hex() not in shown


# --- the master key ---


@pytest.mark.parametrize("padded", [True, False])
def test_the_master_key_is_read_from_the_setting(tmp_path: Path, padded: bool) -> None:
    master = secrets.token_bytes(32)
    text = key_text(master) if padded else key_text(master).rstrip("=")
    assert load_master_key(settings(tmp_path, text)) == master


def test_the_setting_wins_over_development_mode(tmp_path: Path) -> None:
    master = secrets.token_bytes(32)
    assert load_master_key(settings(tmp_path, key_text(master), dev_mode=True)) == master
    assert not (tmp_path / "data" / "master.key").exists()


def test_a_missing_master_key_stops_start_up_outside_development(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_master_key(settings(tmp_path, None))
    message = str(refused.value)
    assert message.startswith("HEADSHOTS_MASTER_KEY is not set")
    assert "secrets.token_bytes(32)" in message  # tells the operator how to make one
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "text",
    [
        key_text(secrets.token_bytes(16)),  # too short
        key_text(secrets.token_bytes(48)),  # too long
        base64.b64encode(b"\xfb" * 32).decode(),  # standard alphabet, has '+' and '/'
        "change-me",
        key_text(secrets.token_bytes(32))[:-3] + "!!=",
        " " * 44,
    ],
)
def test_a_malformed_master_key_is_refused_with_a_recipe(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_master_key(settings(tmp_path, text))
    message = str(refused.value)
    assert "secrets.token_bytes(32)" in message
    if text.strip():
        assert text.strip() not in message  # a near-miss key is still a secret


def test_development_mode_creates_a_private_key_once_and_reuses_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="headshots.storage.keys"):
        first = load_master_key(settings(tmp_path, None, dev_mode=True))
    path = tmp_path / "data" / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "development only" in caplog.records[0].getMessage()
    assert key_text(first) not in caplog.text

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="headshots.storage.keys"):
        again = load_master_key(settings(tmp_path, None, dev_mode=True))
    assert again == first
    assert not caplog.records
    assert os.listdir(tmp_path / "data") == ["master.key"]


def test_processes_starting_together_agree_on_one_development_key(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from headshots.config import Settings; "
        "from headshots.storage.keys import load_master_key; "
        "s = Settings(data_dir=Path(sys.argv[1]), master_key=None, dev_mode=True); "
        "print(load_master_key(s).hex())"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "data")],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    keys = {run.communicate(timeout=60)[0].strip() for run in runs}
    assert len(keys) == 1 and len(keys.pop()) == 64


def test_a_development_key_others_can_read_is_refused(tmp_path: Path) -> None:
    load_master_key(settings(tmp_path, None, dev_mode=True))
    path = tmp_path / "data" / "master.key"
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_master_key(settings(tmp_path, None, dev_mode=True))
