"""The team routes of the JSON API (orders/teams; docs/decisions/0017-team-mode.md).

The organiser's calls take the admin token as ``Authorization: Bearer``:
none is 401, a wrong one the same 404 as a team that does not exist. A
member's pick calls take their order's token, like every order call.
Members join through ``POST /api/orders`` with ``team=CODE`` (web.api).
"""

from __future__ import annotations

import io
import zipfile
from typing import Any
from urllib.parse import urljoin

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from headshots.orders import service
from headshots.orders.db import transaction
from headshots.orders.models import utcnow
from headshots.orders.teams import picks as team_picks
from headshots.orders.teams import service as teams
from headshots.orders.teams.models import Team, TeamStatus
from headshots.runtime import Runtime
from headshots.web import schemas
from headshots.web.deps import RuntimeDep, TokenDep, base_url
from headshots.web.responses import NO_STORE, image_of
from headshots.web.schemas import file, refusals

router = APIRouter(prefix="/api", responses=refusals(422), tags=["teams"])
TEAMS = "/api/teams"


def team_of(session: Session, team: Team, teams_base: str = TEAMS) -> schemas.Team:
    """The organiser's view of a team: seats, members' progress, picks; no image."""
    members = [
        schemas.TeamMember(
            id=member.id,
            display_name=member.display_name,
            status=member.status,
            joined_at=member.joined_at,
            order_expires_at=member.order_expires_at,
            picks=[
                schemas.TeamPick(id=pick_id, style=style, index=index, kept_until=until)
                for pick_id, style, index, until in member.picks
            ],
        )
        for member in teams.members_of(session, team)
    ]
    if team.status == TeamStatus.OPEN:
        status = "open" if team.is_paid else "unpaid"
        if team.is_paid and team.seats_used >= team.seats:
            status = "full"
    else:
        status = team.status
    return schemas.Team(
        id=team.id,
        name=team.name,
        status=status,
        paid=team.is_paid,
        seats=team.seats,
        used=team.seats_used,
        open=max(0, team.seats - team.seats_used),
        revoked=team.seats_revoked,
        seat_price_cents=team.seat_price_cents,
        amount_cents=team.amount_cents,
        currency=team.currency,
        tier=team.tier,
        styles=list(team.styles),
        backdrop=team.backdrop,
        created_at=team.created_at,
        expires_at=team.expires_at,
        ended_at=team.ended_at,
        members=members,
        zip_url=None if team.has_ended else f"{teams_base}/{team.id}/download.zip",
    )


def invite_path(code: str) -> str:
    return f"/t/{code}"


def absolute(runtime: Runtime, request: Request, path: str) -> str:
    # The host is an allowed one (web.guards), or the configured public URL.
    return urljoin(base_url(request, runtime), path)


@router.post("/teams", status_code=201, response_model=schemas.NewTeam, responses=refusals(429))
def create_team(
    body: schemas.NewTeamRequest, request: Request, runtime: RuntimeDep
) -> JSONResponse:
    from headshots.web.security import client_address, limiter_of

    limiter_of(request).take(client_address(request))
    with transaction(runtime.sessions) as session:
        created = teams.create_team(
            session,
            runtime.settings,
            runtime.tiers,
            name=body.name,
            seats=body.seats,
            style_ids=body.styles,
            tier_id=body.tier,
            backdrop=body.backdrop,
            expires_in_days=body.expires_in_days,
        )
        view = team_of(session, created.team)
    answer = schemas.NewTeam(
        **view.model_dump(),
        admin_token=created.admin_token,
        invite_url=absolute(runtime, request, invite_path(created.invite_code)),
    )
    return JSONResponse(answer.model_dump(mode="json"), status_code=201, headers=NO_STORE)


@router.get("/teams/{team_id}", response_model=schemas.Team, responses=refusals(401, 404))
def get_team(team_id: str, runtime: RuntimeDep, token: TokenDep) -> JSONResponse:
    with transaction(runtime.sessions) as session:
        view = team_of(session, teams.open_team(session, team_id, token))
    return JSONResponse(view.model_dump(mode="json"), headers=NO_STORE)


@router.post("/teams/{team_id}/checkout", responses=refusals(401, 404, 409, 410, 502))
def team_checkout(
    team_id: str, request: Request, runtime: RuntimeDep, token: TokenDep
) -> schemas.Checkout:
    with transaction(runtime.sessions) as session:
        url = teams.open_checkout(
            session,
            runtime.payments,
            team_id,
            token,
            base_url=base_url(request, runtime),
            page=f"/teams/{team_id}",
        )
    return schemas.Checkout(
        checkout_url=absolute(runtime, request, url), test_mode=runtime.payments.test_mode
    )


@router.post(
    "/teams/{team_id}/seats/revoke",
    response_model=schemas.Team,
    responses=refusals(401, 404, 409, 410),
)
def revoke_seats(
    team_id: str, body: schemas.SeatRevoke, runtime: RuntimeDep, token: TokenDep
) -> JSONResponse:
    with transaction(runtime.sessions) as session:
        view = team_of(session, teams.revoke_seats(session, team_id, token, body.count))
    return JSONResponse(view.model_dump(mode="json"), headers=NO_STORE)


@router.delete("/teams/{team_id}", status_code=204, responses=refusals(401, 404, 503))
def end_team(team_id: str, runtime: RuntimeDep, token: TokenDep) -> Response:
    """End the team now: every pick destroyed; members keep their own orders."""
    with transaction(runtime.sessions) as session:
        team = teams.open_team(session, team_id, token)
        teams.end_team(session, runtime.blobs, team)
    return Response(status_code=204)


@router.delete(
    "/teams/{team_id}/picks/{pick_id}", status_code=204, responses=refusals(401, 404, 503)
)
def delete_team_pick(team_id: str, pick_id: str, runtime: RuntimeDep, token: TokenDep) -> Response:
    """The organiser has the picture: the team's copy is destroyed."""
    with transaction(runtime.sessions) as session:
        team_picks.delete_pick(
            session, runtime.blobs, team_id=team_id, token=token, pick_id=pick_id
        )
    return Response(status_code=204)


@router.get(
    "/teams/{team_id}/download.zip",
    response_class=Response,
    responses={**file("application/zip", "Every pick."), **refusals(401, 404, 409, 410)},
)
def team_zip(team_id: str, runtime: RuntimeDep, token: TokenDep) -> Response:
    return team_zip_response(runtime, team_id, token)


def team_zip_response(runtime: Runtime, team_id: str, token: str | None) -> Response:
    """Every pick, one file per member and pick, each with its Content Credentials."""
    with transaction(runtime.sessions) as session:
        entries = team_picks.zip_entries(session, team_id, token)
    if not entries:
        raise service.NotReady("No member has given the team a picture yet.")
    buffer = io.BytesIO()
    # PNGs are compressed already: stored, the zip is made at the speed of reading.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for entry in entries:
            data = runtime.blobs.get(entry.pick_id, entry.wrapped_key, team_picks.PICK_BLOB)
            archive.writestr(entry.name, data)
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={**NO_STORE, "Content-Disposition": 'attachment; filename="team-headshots.zip"'},
    )


# --- a member's side: give a headshot to the organiser, or take it back -----------------

PICK_DETAIL = (
    "Your organiser receives this image. The team keeps it until the organiser has it "
    "or the team ends, at most 14 days. Nothing else of yours is shared."
)


def pick_of(picked: Any, team_name: str) -> schemas.Pick:
    return schemas.Pick(
        id=picked.id,
        variation_id=picked.variation_id,
        team=team_name,
        kept_until=picked.expires_at,
        detail=PICK_DETAIL,
    )


@router.post(
    "/orders/{order_id}/variations/{variation_id}/pick",
    response_model=schemas.Pick,
    responses=refusals(404, 409, 410, 503),
)
def pick(order_id: str, variation_id: str, runtime: RuntimeDep, token: TokenDep) -> JSONResponse:
    return pick_response(runtime, order_id, variation_id, token)


def pick_response(
    runtime: Runtime, order_id: str, variation_id: str, token: str | None
) -> JSONResponse:
    # The clean PNG exactly as the member would download it, credentials included.
    png, _ = image_of(runtime, order_id, variation_id, token, clean=True)
    with transaction(runtime.sessions) as session:
        picked = team_picks.pick(
            session,
            runtime.blobs,
            order_id=order_id,
            token=token,
            variation_id=variation_id,
            png=png,
        )
        body = pick_of(picked, picked.team.name)
    return JSONResponse(body.model_dump(mode="json"), headers=NO_STORE)


@router.delete(
    "/orders/{order_id}/variations/{variation_id}/pick",
    status_code=204,
    responses=refusals(404, 503),
)
def take_back(order_id: str, variation_id: str, runtime: RuntimeDep, token: TokenDep) -> Response:
    take_back_pick(runtime, order_id, variation_id, token)
    return Response(status_code=204)


def take_back_pick(runtime: Runtime, order_id: str, variation_id: str, token: str | None) -> None:
    with transaction(runtime.sessions) as session:
        team_picks.take_back(
            session, runtime.blobs, order_id=order_id, token=token, variation_id=variation_id
        )


@router.get(
    "/orders/{order_id}/team", response_model=schemas.MemberTeam, responses=refusals(404, 409)
)
def order_team(order_id: str, runtime: RuntimeDep, token: TokenDep) -> schemas.MemberTeam:
    with transaction(runtime.sessions) as session:
        return member_team_of(session, service.open_order(session, order_id, token))


def member_team_of(session: Session, order: Any) -> schemas.MemberTeam:
    joined = team_picks.member_team(session, order)
    if joined is None:
        raise team_picks.NotInTeam()
    team = joined.team
    return schemas.MemberTeam(
        name=team.name,
        styles=list(team.styles),
        backdrop=team.backdrop,
        open=not team.has_ended and team.expires_at > utcnow(),
        picked=[p.variation_id for p in joined.picks],
    )
