"""A deleted order's key is gone from every file of the database when DELETE answers.

These tests read the database's own files, as someone with the disk would:
SQLite's database and its write-ahead log, PostgreSQL's table files (found
with pg_relation_filepath). Each first finds the live key where it lies, so
that not finding it afterwards means something.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from headshots.orders.models import Order
from headshots.runtime import Runtime
from tests.support import auth, unavailable, upload

FIXTURES = Path(__file__).parents[1] / "fixtures"
SELFIE = (FIXTURES / "obama.jpg").read_bytes()


def database_files(runtime: Runtime) -> dict[str, bytes]:
    """Every file that holds the database's rows, read from disk now."""
    if runtime.database.dialect.name == "sqlite":
        base = runtime.settings.data_dir / "headshots.db"
        return {
            path.name: path.read_bytes()
            for path in (base, base.with_name(base.name + "-wal"))
            if path.exists()
        }
    with runtime.database.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        # Written pages may still be only in shared buffers; put them on disk.
        connection.execute(text("CHECKPOINT"))
        root = Path(connection.execute(text("SHOW data_directory")).scalar_one())
        files = {}
        for table in ("data_keys", "orders", "drafts", "variations"):
            relative = connection.execute(
                text("SELECT pg_relation_filepath(:table)"), {"table": table}
            ).scalar_one()
            path = root / relative
            try:
                files[table] = b"".join(
                    segment.read_bytes() for segment in sorted(path.parent.glob(path.name + "*"))
                )
            except PermissionError:
                unavailable("PostgreSQL's files are not readable here (the tests need root)")
    return files


def key_of(runtime: Runtime, order_id: str) -> bytes:
    with runtime.sessions() as session:
        order = session.get(Order, order_id)
        assert order is not None and order.wrapped_key is not None
        return order.wrapped_key


def holders(files: dict[str, bytes], secret: bytes) -> list[str]:
    return [name for name, content in files.items() if secret in content]


def test_delete_leaves_no_copy_of_the_key_in_any_database_file(
    client: TestClient, runtime: Runtime
) -> None:
    doomed = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    kept = upload(client, SELFIE, tier="starter", styles=("minimal",)).json()
    doomed_key, kept_key = key_of(runtime, doomed["id"]), key_of(runtime, kept["id"])
    before = database_files(runtime)
    assert holders(before, doomed_key), "the live key should be found on disk first"

    answer = client.delete(f"/api/orders/{doomed['id']}", headers=auth(doomed["token"]))

    assert answer.status_code == 204
    after = database_files(runtime)  # read at once: nothing ran in between
    assert holders(after, doomed_key) == []
    assert holders(after, kept_key), "the other order's key must survive"
    assert key_of(runtime, kept["id"]) == kept_key


def test_a_transaction_running_across_the_delete_does_not_keep_the_key(
    client: TestClient, runtime: Runtime
) -> None:
    """VACUUM FULL keeps a deleted row while an older transaction runs; the scrub waits it out."""
    import threading

    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    key = key_of(runtime, order["id"])
    # Another process's write (a job, the heartbeat), still open as DELETE arrives.
    other = runtime.database.connect()
    other.begin()
    other.execute(text("UPDATE ticks SET last_run = last_run"))
    finishing = threading.Timer(0.5, other.commit)
    finishing.start()
    try:
        answer = client.delete(f"/api/orders/{order['id']}", headers=auth(order["token"]))
    finally:
        finishing.join()
        other.close()
    assert answer.status_code == 204
    assert holders(database_files(runtime), key) == []


def test_the_old_table_file_is_gone_on_postgresql(client: TestClient, runtime: Runtime) -> None:
    if runtime.database.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite rewrites its one file in place")
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    with runtime.database.connect() as connection:
        root = Path(connection.execute(text("SHOW data_directory")).scalar_one())
        old = (
            root / connection.execute(text("SELECT pg_relation_filepath('data_keys')")).scalar_one()
        )
    client.delete(f"/api/orders/{order['id']}", headers=auth(order["token"]))
    # VACUUM FULL gave the table a new file; the old one is emptied at commit.
    assert not old.exists() or old.stat().st_size == 0


def test_a_draft_key_is_scrubbed_when_the_sweep_discards_it(
    client: TestClient, runtime: Runtime
) -> None:
    from datetime import timedelta

    from headshots.imaging.selfie import prepare_selfie
    from headshots.orders import drafts
    from headshots.orders.db import transaction
    from headshots.orders.models import utcnow

    selfie = prepare_selfie(SELFIE, runtime.settings)
    with transaction(runtime.sessions) as session:
        draft = drafts.create_draft(session, runtime.blobs, runtime.settings, selfie).draft
        draft_id, key = draft.id, draft.wrapped_key
    assert holders(database_files(runtime), key)
    with transaction(runtime.sessions) as session:
        assert drafts.sweep_drafts(session, runtime.blobs, utcnow() + timedelta(hours=2)) == 1
    assert holders(database_files(runtime), key) == []
    with runtime.sessions() as session:
        assert session.get(drafts.Draft, draft_id) is None
