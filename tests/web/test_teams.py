"""Team mode through the JSON API, on SQLite and PostgreSQL.

An organiser creates and pays for a team; members join through the invite
code with their selfie, get their own prepaid orders, and give pictures to
the organiser, who sees progress and picks and nothing else.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from headshots.orders.models import Order
from headshots.runtime import Runtime
from tests.support import InstantEngine, auth, confirm_local_payment, wait_ready

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture(scope="module")
def selfie() -> bytes:
    return (FIXTURES / "obama.jpg").read_bytes()


def pixels(png: bytes) -> bytes:
    return Image.open(io.BytesIO(png)).convert("RGB").tobytes()


def create_team(client: TestClient, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Acme Ltd", "seats": 3, "styles": ["corporate"], **overrides}
    answer = client.post("/api/teams", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def pay_team(client: TestClient, team: dict[str, Any]) -> None:
    checkout = client.post(f"/api/teams/{team['id']}/checkout", headers=auth(team["admin_token"]))
    assert checkout.status_code == 200, checkout.text
    assert confirm_local_payment(client, checkout.json()["checkout_url"]).status_code == 303


def code_of(team: dict[str, Any]) -> str:
    return str(team["invite_url"]).rsplit("/t/", 1)[1]


def join(
    client: TestClient, code: str, photo: bytes, *, name: str | None = None, **extra: Any
) -> Any:
    data: dict[str, Any] = {"team": code, **extra}
    if name is not None:
        data["display_name"] = name
    return client.post(
        "/api/orders", data=data, files={"selfie": ("me.jpg", io.BytesIO(photo), "image/jpeg")}
    )


def view(client: TestClient, team: dict[str, Any]) -> dict[str, Any]:
    answer = client.get(f"/api/teams/{team['id']}", headers=auth(team["admin_token"]))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_the_whole_team_flow(client: TestClient, runtime: Runtime, selfie: bytes) -> None:
    team = create_team(client, seats=3, styles=["corporate", "minimal"])
    # Two styles take the smallest tier that holds them: 3 seats of Professional.
    assert team["tier"] == "professional"
    assert team["amount_cents"] == 3 * 1900 and team["seat_price_cents"] == 1900
    assert team["status"] == "unpaid" and team["paid"] is False
    assert team["invite_url"].startswith("http://testserver/t/")
    assert code_of(team) not in team["admin_token"]

    pay_team(client, team)
    assert view(client, team)["status"] == "open"

    first = join(client, code_of(team), selfie, name="Ada Lovelace")
    assert first.status_code == 201, first.text
    member = first.json()
    # The member's own order: the team's styles, paid, their own token.
    assert member["styles"] == ["corporate", "minimal"] and member["paid"] is True
    second = join(client, code_of(team), selfie).json()
    ready = wait_ready(client, member["id"], member["token"])
    wait_ready(client, second["id"], second["token"])
    variation = ready["variations"][0]
    assert variation["download_url"]  # watermark-free: the team paid

    seen = view(client, team)
    assert (seen["used"], seen["open"]) == (2, 1)
    assert [m["status"] for m in seen["members"]] == ["ready", "ready"]
    assert seen["members"][0]["display_name"] == "Ada Lovelace"
    assert seen["members"][1]["display_name"] is None

    picked = client.post(
        f"/api/orders/{member['id']}/variations/{variation['id']}/pick",
        headers=auth(member["token"]),
    )
    assert picked.status_code == 200, picked.text
    assert "organiser receives this image" in picked.json()["detail"]
    assert picked.json()["team"] == "Acme Ltd"
    again = client.post(
        f"/api/orders/{member['id']}/variations/{variation['id']}/pick",
        headers=auth(member["token"]),
    )
    assert again.json()["id"] == picked.json()["id"]  # once, however often pressed
    mine = client.get(f"/api/orders/{member['id']}/team", headers=auth(member["token"])).json()
    assert mine["picked"] == [variation["id"]] and mine["name"] == "Acme Ltd"

    seen = view(client, team)
    assert [m["status"] for m in seen["members"]] == ["picked", "ready"]
    archive = client.get(seen["zip_url"], headers=auth(team["admin_token"]))
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as opened:
        names = opened.namelist()
        png = opened.read(names[0])
    assert names == [f"01-ada-lovelace-{variation['style']}-{variation['index']}.png"]
    # The member's own download: the same pixels, signed Content Credentials.
    own = client.get(variation["download_url"], headers=auth(member["token"])).content
    assert pixels(png) == pixels(own)
    assert b"c2pa" in png
    assert Image.open(io.BytesIO(png)).size == (1024, 1280)

    assert client.delete(f"/api/teams/{team['id']}", headers=auth(team["admin_token"])).status_code
    ended = view(client, team)
    assert ended["status"] == "ended" and ended["zip_url"] is None
    assert all(m["display_name"] is None and m["picks"] == [] for m in ended["members"])
    gone = client.get(f"/api/teams/{team['id']}/download.zip", headers=auth(team["admin_token"]))
    assert gone.status_code == 410
    # The members' orders stay theirs.
    still = client.get(f"/api/orders/{member['id']}", headers=auth(member["token"]))
    assert still.status_code == 200 and still.json()["status"] == "ready"
    refused = join(client, code_of(team), selfie)
    assert refused.status_code == 410 and "ended" in refused.json()["detail"]


def test_refusals_each_with_a_sentence_and_no_seat_used(
    client: TestClient, runtime: Runtime, selfie: bytes
) -> None:
    team = create_team(client, seats=1)
    unpaid = join(client, code_of(team), selfie)
    assert unpaid.status_code == 402 and "not paid" in unpaid.json()["detail"]
    pay_team(client, team)
    mixed = join(client, code_of(team), selfie, tier="starter")
    assert mixed.status_code == 422 and "team's styles" in mixed.json()["detail"]
    not_a_photo = join(client, code_of(team), b"not a photo")
    assert not_a_photo.status_code == 422
    assert view(client, team)["used"] == 0  # refused uploads use no seat
    wrong = join(client, "x" * 43, selfie)
    assert wrong.status_code == 404

    assert join(client, code_of(team), selfie).status_code == 201
    full = join(client, code_of(team), selfie)
    assert full.status_code == 409 and "seat" in full.json()["detail"]

    expired = create_team(client, seats=2)
    pay_team(client, expired)
    from sqlalchemy import update

    from headshots.orders.db import transaction
    from headshots.orders.models import utcnow
    from headshots.orders.teams.models import Team

    with transaction(runtime.sessions) as session:
        session.execute(update(Team).where(Team.id == expired["id"]).values(expires_at=utcnow()))
    late = join(client, code_of(expired), selfie)
    assert late.status_code == 410 and "expired" in late.json()["detail"]
    with runtime.sessions() as session:
        assert session.query(Order).count() == 1  # only the one member who got a seat


def test_creating_a_team_refuses_what_cannot_be(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for body, words in (
        ({"name": "A", "seats": 0, "styles": ["corporate"]}, "seats"),
        ({"name": "A", "seats": 501, "styles": ["corporate"]}, "seats"),
        ({"name": "A", "seats": 2}, "styles"),
        ({"name": "A", "seats": 2, "styles": ["nope"]}, "style"),
        ({"name": "A", "seats": 2, "tier": "starter", "styles": ["corporate", "minimal"]}, "tier"),
        ({"name": "A", "seats": 2, "styles": ["corporate"], "backdrop": "plaid"}, "backdrop"),
        ({"name": "A", "seats": 2, "styles": ["corporate"], "expires_in_days": 15}, "expires"),
        ({"name": " ", "seats": 2, "styles": ["corporate"]}, "name"),
    ):
        answer = client.post("/api/teams", json=body)
        assert answer.status_code == 422, body
        assert words in answer.json()["detail"], answer.json()
    # A backdrop the engine cannot paint is refused before the organiser pays.
    unpaintable = client.post(
        "/api/teams", json={"name": "A", "seats": 2, "styles": ["corporate"], "backdrop": "navy"}
    )
    assert unpaintable.status_code == 422
    assert unpaintable.json()["error"] == "backdrop_not_offered"
    monkeypatch.setattr(InstantEngine, "takes_backdrop_colour", True)
    by_tier = create_team(client, tier="professional", styles=[], backdrop="navy")
    assert by_tier["styles"] == ["corporate", "creative", "startup"]
    assert by_tier["backdrop"] == "navy"


def test_the_seat_price_can_be_set_per_tier(tmp_path: Path, database_url: str | None) -> None:
    from headshots.runtime import build_runtime
    from headshots.web.app import create_app
    from tests.support import make_settings

    settings = make_settings(tmp_path, database_url, team_seat_prices={"starter": 700})
    active = build_runtime(settings)
    try:
        with TestClient(create_app(active, run_consumer=False)) as client:
            team = create_team(client, seats=10, styles=["minimal"])
    finally:
        active.close()
    assert (team["tier"], team["seat_price_cents"], team["amount_cents"]) == ("starter", 700, 7000)


def test_the_organiser_needs_the_admin_token(client: TestClient) -> None:
    team = create_team(client)
    base = f"/api/teams/{team['id']}"
    for method, path in (
        ("GET", base),
        ("GET", f"{base}/download.zip"),
        ("DELETE", base),
        ("POST", f"{base}/checkout"),
    ):
        bare = client.request(method, path)
        assert bare.status_code == 401, (method, path)
        assert bare.headers["www-authenticate"] == "Bearer"
        wrong = client.request(method, path, headers=auth("not-the-token"))
        assert wrong.status_code == 404, (method, path)
        # The invite code opens nothing of the organiser's.
        invite = client.request(method, path, headers=auth(code_of(team)))
        assert invite.status_code == 404, (method, path)
    assert view(client, team)["status"] == "unpaid"


def test_a_seat_can_be_revoked_before_it_is_used(client: TestClient, selfie: bytes) -> None:
    team = create_team(client, seats=2)
    revoked = client.post(
        f"/api/teams/{team['id']}/seats/revoke", json={}, headers=auth(team["admin_token"])
    )
    assert revoked.status_code == 200, revoked.text
    # Before payment the price follows the seats.
    assert (revoked.json()["seats"], revoked.json()["amount_cents"]) == (1, 900)
    pay_team(client, team)
    assert join(client, code_of(team), selfie).status_code == 201
    used = client.post(
        f"/api/teams/{team['id']}/seats/revoke",
        json={"count": 1},
        headers=auth(team["admin_token"]),
    )
    assert used.status_code == 409 and "unused seat" in used.json()["detail"]
    assert view(client, team)["seats"] == 1


def test_the_organiser_never_sees_an_image_or_a_members_token(
    client: TestClient, selfie: bytes
) -> None:
    team = create_team(client, seats=2)
    pay_team(client, team)
    member = join(client, code_of(team), selfie, name="Grace").json()
    ready = wait_ready(client, member["id"], member["token"])
    chosen, other = ready["variations"][0], ready["variations"][1]
    client.post(
        f"/api/orders/{member['id']}/variations/{chosen['id']}/pick",
        headers=auth(member["token"]),
    ).raise_for_status()
    seen = client.get(f"/api/teams/{team['id']}", headers=auth(team["admin_token"]))
    text = seen.text
    assert member["token"] not in text
    assert member["id"] not in text  # not even the order's address
    for variation in ready["variations"]:
        assert variation["id"] not in text
    archive = client.get(seen.json()["zip_url"], headers=auth(team["admin_token"])).content
    own = {
        v["id"]: client.get(v["download_url"], headers=auth(member["token"])).content
        for v in (chosen, other)
    }
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        names = opened.namelist()
        inside = [pixels(opened.read(name)) for name in names]
    # One file: the picked one (the test engine makes every variation alike,
    # so the name tells them apart).
    assert names == [f"01-grace-{chosen['style']}-{chosen['index']}.png"]
    assert inside == [pixels(own[chosen["id"]])]
    assert other["index"] != chosen["index"]
    assert member["token"].encode() not in archive
    # The organiser's token opens none of the member's order.
    for path in (
        f"/api/orders/{member['id']}",
        other["preview_url"],
        other["download_url"],
    ):
        assert client.get(path, headers=auth(team["admin_token"])).status_code == 404


def test_a_pick_needs_a_team_and_a_finished_image(client: TestClient, selfie: bytes) -> None:
    from tests.support import upload

    lone = upload(client, selfie, tier="starter", styles=("corporate",)).json()
    ready = wait_ready(client, lone["id"], lone["token"])
    answer = client.post(
        f"/api/orders/{lone['id']}/variations/{ready['variations'][0]['id']}/pick",
        headers=auth(lone["token"]),
    )
    # A person's own order: unpaid (402 before anything), then no team.
    assert answer.status_code == 402
    team = create_team(client, seats=1)
    pay_team(client, team)
    member = join(client, code_of(team), selfie).json()
    ready = wait_ready(client, member["id"], member["token"])
    variation = ready["variations"][0]
    path = f"/api/orders/{member['id']}/variations/{variation['id']}/pick"
    assert client.post(path).status_code == 404  # no token
    assert client.delete(path, headers=auth(member["token"])).status_code == 404  # not picked
    assert client.post(path, headers=auth(member["token"])).status_code == 200
    assert client.delete(path, headers=auth(member["token"])).status_code == 204
    assert view(client, team)["members"][0]["status"] == "ready"
    client.delete(f"/api/teams/{team['id']}", headers=auth(team["admin_token"]))
    late = client.post(path, headers=auth(member["token"]))
    assert late.status_code == 410 and "ended" in late.json()["detail"]


def test_the_same_image_given_twice_at_once_is_one_pick(
    client: TestClient, runtime: Runtime, selfie: bytes
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from headshots.orders.teams.models import Pick

    team = create_team(client, seats=1)
    pay_team(client, team)
    member = join(client, code_of(team), selfie).json()
    ready = wait_ready(client, member["id"], member["token"])
    path = f"/api/orders/{member['id']}/variations/{ready['variations'][0]['id']}/pick"
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(
            pool.map(lambda _: client.post(path, headers=auth(member["token"])), range(6))
        )
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    with runtime.sessions() as session:
        picks = session.query(Pick).all()
        assert len(picks) == 1
