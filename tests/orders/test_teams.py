"""Teams in the order service: seats under concurrency, and every end of a pick.

A pick is the only image of a member that outlives their order; each of
its ends must leave what an order's shred leaves: no blob in the store and
no copy of its key in any file of the database (read from disk, as
tests/orders/test_shredding.py does).
"""

from __future__ import annotations

import io
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select, update

from headshots.errors import HeadshotsError
from headshots.jobs.tasks import run_sweep
from headshots.orders.db import transaction
from headshots.orders.models import DataKey, Order, utcnow
from headshots.orders.teams import service as teams
from headshots.orders.teams.models import Member, Pick, Team
from headshots.runtime import Runtime
from tests.orders.test_shredding import database_files, holders
from tests.support import auth, wait_ready
from tests.web.test_teams import code_of, create_team, join, pay_team

FIXTURES = Path(__file__).parents[1] / "fixtures"
SELFIE = (FIXTURES / "obama.jpg").read_bytes()


def small_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 80), (120, 90, 80)).save(buffer, format="PNG")
    return buffer.getvalue()


def paid_team(runtime: Runtime, seats: int) -> str:
    """A paid team made through the service; its invite code."""
    with transaction(runtime.sessions) as session:
        created = teams.create_team(
            session,
            runtime.settings,
            runtime.tiers,
            name="Racers",
            seats=seats,
            style_ids=["minimal"],
        )
        created.team.paid_at = utcnow()
        return created.invite_code


def test_twenty_members_racing_for_ten_seats_get_exactly_ten(runtime: Runtime) -> None:
    code = paid_team(runtime, seats=12)
    selfie = small_png()

    def joined_alone() -> None:
        with transaction(runtime.sessions) as session:
            teams.join(
                session,
                runtime.blobs,
                runtime.settings,
                code=code,
                selfie_png=selfie,
                engine="instant",
            )

    joined_alone()
    joined_alone()  # two seats used before the race: ten left

    start = threading.Barrier(20)
    outcomes: list[Any] = []
    lock = threading.Lock()

    def racer() -> None:
        start.wait()
        try:
            joined_alone()
            outcome: Any = "joined"
        except HeadshotsError as error:
            outcome = error.status_code
        except Exception as error:  # reported below, not swallowed
            outcome = repr(error)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=racer) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes, key=str) == sorted(["joined"] * 10 + [409] * 10, key=str)
    with runtime.sessions() as session:
        team = session.scalars(select(Team)).one()
        assert (team.seats_used, team.seats) == (12, 12)
        assert session.scalar(select(func.count()).select_from(Member)) == 12
        assert session.scalar(select(func.count()).select_from(Order)) == 12


def test_a_failed_join_gives_its_seat_back(runtime: Runtime) -> None:
    code = paid_team(runtime, seats=1)

    def fails_after_the_claim() -> None:
        with transaction(runtime.sessions) as session:
            teams.join(
                session,
                runtime.blobs,
                runtime.settings,
                code=code,
                selfie_png=small_png(),
                engine="instant",
            )
            raise RuntimeError("the request failed after the seat was claimed")

    with pytest.raises(RuntimeError, match="after the seat was claimed"):
        fails_after_the_claim()
    with runtime.sessions() as session:
        assert session.scalars(select(Team)).one().seats_used == 0


# --- picks: made, outliving the order, and shredded at each of their ends -----------


def picked(
    client: TestClient, days: int = 7
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]:
    """A paid team, a member with a ready order, one pick: (team, member, variation, pick id)."""
    team = create_team(client, seats=2, expires_in_days=days)
    pay_team(client, team)
    member = join(client, code_of(team), SELFIE, name="Lin").json()
    ready = wait_ready(client, member["id"], member["token"])
    variation = ready["variations"][0]
    answer = client.post(
        f"/api/orders/{member['id']}/variations/{variation['id']}/pick",
        headers=auth(member["token"]),
    )
    assert answer.status_code == 200, answer.text
    return team, member, variation, answer.json()["id"]


def key_of_pick(runtime: Runtime, pick_id: str) -> bytes:
    with runtime.sessions() as session:
        key = session.get(DataKey, pick_id)
        assert key is not None
        return key.wrapped_key


def end_by_team(client: TestClient, team: dict[str, Any], member: dict[str, Any], **_: Any) -> None:
    answer = client.delete(f"/api/teams/{team['id']}", headers=auth(team["admin_token"]))
    assert answer.status_code == 204


def end_by_organiser(
    client: TestClient, team: dict[str, Any], member: dict[str, Any], pick_id: str, **_: Any
) -> None:
    path = f"/api/teams/{team['id']}/picks/{pick_id}"
    assert client.delete(path, headers=auth(team["admin_token"])).status_code == 204
    assert client.delete(path, headers=auth(team["admin_token"])).status_code == 404


def end_by_taking_back(
    client: TestClient,
    team: dict[str, Any],
    member: dict[str, Any],
    variation: dict[str, Any],
    **_: Any,
) -> None:
    path = f"/api/orders/{member['id']}/variations/{variation['id']}/pick"
    assert client.delete(path, headers=auth(member["token"])).status_code == 204


def end_by_deleting_the_order(
    client: TestClient, team: dict[str, Any], member: dict[str, Any], **_: Any
) -> None:
    answer = client.delete(f"/api/orders/{member['id']}", headers=auth(member["token"]))
    assert answer.status_code == 204


@pytest.mark.parametrize(
    "end", [end_by_team, end_by_organiser, end_by_taking_back, end_by_deleting_the_order]
)
def test_each_end_of_a_pick_leaves_no_blob_and_no_key_on_disk(
    client: TestClient, runtime: Runtime, end: Any
) -> None:
    team, member, variation, pick_id = picked(client)
    key = key_of_pick(runtime, pick_id)
    folder = runtime.settings.data_dir / "blobs" / pick_id
    assert any(folder.iterdir()), "the pick's sealed copy should be in the store first"
    assert holders(database_files(runtime), key), "the live key should be found on disk first"

    end(client, team, member, variation=variation, pick_id=pick_id)

    assert not folder.exists()
    assert holders(database_files(runtime), key) == []
    with runtime.sessions() as session:
        assert session.get(Pick, pick_id) is None
        assert session.get(DataKey, pick_id) is None
    seen = client.get(f"/api/teams/{team['id']}", headers=auth(team["admin_token"])).json()
    assert seen["members"][0]["picks"] == []


def test_a_pick_outlives_its_order_and_goes_after_fourteen_days(
    client: TestClient, runtime: Runtime
) -> None:
    team, member, _, pick_id = picked(client, days=14)
    with runtime.sessions() as session:
        made = session.get(Pick, pick_id)
        assert made is not None
        assert made.expires_at - made.created_at <= timedelta(days=14)
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Order)
            .where(Order.id == member["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    run_sweep(runtime)
    # The member's order is gone at its 24 hours, the pick is not.
    assert (
        client.get(f"/api/orders/{member['id']}", headers=auth(member["token"])).status_code == 404
    )
    seen = client.get(f"/api/teams/{team['id']}", headers=auth(team["admin_token"])).json()
    assert seen["members"][0]["status"] == "picked"
    assert seen["members"][0]["order_expires_at"] is None
    archive = client.get(seen["zip_url"], headers=auth(team["admin_token"]))
    assert archive.status_code == 200
    key = key_of_pick(runtime, pick_id)

    with transaction(runtime.sessions) as session:
        assert teams.sweep_teams(session, runtime.blobs, utcnow() + timedelta(days=13)) == 0
    with transaction(runtime.sessions) as session:
        assert (
            teams.sweep_teams(session, runtime.blobs, utcnow() + timedelta(days=14, seconds=1)) == 1
        )
    assert not (runtime.settings.data_dir / "blobs" / pick_id).exists()
    assert holders(database_files(runtime), key) == []
    seen = client.get(f"/api/teams/{team['id']}", headers=auth(team["admin_token"])).json()
    assert seen["members"][0]["status"] == "gone"


def test_an_expired_team_is_ended_by_the_sweep(client: TestClient, runtime: Runtime) -> None:
    team, member, _, pick_id = picked(client)
    key = key_of_pick(runtime, pick_id)
    with transaction(runtime.sessions) as session:
        session.execute(update(Team).where(Team.id == team["id"]).values(expires_at=utcnow()))
    run_sweep(runtime)
    seen = client.get(f"/api/teams/{team['id']}", headers=auth(team["admin_token"])).json()
    assert seen["status"] == "expired" and seen["members"][0]["display_name"] is None
    assert not (runtime.settings.data_dir / "blobs" / pick_id).exists()
    assert holders(database_files(runtime), key) == []
    # The member's order is theirs until its own end.
    assert (
        client.get(f"/api/orders/{member['id']}", headers=auth(member["token"])).status_code == 200
    )


def test_the_hourly_sweep_of_unowned_blobs_keeps_live_picks(
    client: TestClient, runtime: Runtime
) -> None:
    from headshots.orders import unowned

    _, _, _, pick_id = picked(client)
    with transaction(runtime.sessions) as session:
        unowned.delete_unowned(session, runtime.blobs, grace=timedelta(0))
    assert any((runtime.settings.data_dir / "blobs" / pick_id).iterdir())
