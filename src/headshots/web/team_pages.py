"""The team pages: the organiser's (create, pay, invite, watch, download, end) and the invite.

The organiser's admin token lives in an HttpOnly cookie named for the
team, as an order's token does; every change is a form with its CSRF token
(decision 0003). The invite page is the upload page with the team's name
and look, and no tier or payment: its upload becomes the member's own
order, opened with the member's own cookie (docs/decisions/0017-team-mode.md).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from headshots.backdrops import NAMED
from headshots.engines.base import declared
from headshots.errors import HeadshotsError
from headshots.orders import intake
from headshots.orders.db import transaction
from headshots.orders.models import utcnow
from headshots.orders.teams import service as teams
from headshots.orders.teams.models import Team
from headshots.styles import STYLES, get_style
from headshots.tiers import format_price
from headshots.web.deps import base_url, runtime_of
from headshots.web.multipart import FormError, read_form, read_page_form
from headshots.web.pages import error_page, render, time_left
from headshots.web.responses import NO_STORE
from headshots.web.security import CSRF_FIELD, client_address, csrf_of, limiter_of, set_cookie
from headshots.web.teams import invite_path, take_back_pick, team_of, team_zip_response

router = APIRouter(include_in_schema=False)
TEAM_PAGES = "/teams"


def _admin_token(request: Request, team_id: str) -> str | None:
    return request.cookies.get(f"team_{team_id}")


def _form_values(request: Request, **chosen: Any) -> dict[str, Any]:
    # A backdrop is offered only where the engine can paint one.
    can_paint = declared(runtime_of(request).settings).takes_backdrop_colour
    return {
        "styles": STYLES,
        "backdrops": list(NAMED) if can_paint else [],
        "chosen": {"seats": 5, "days": 7, "styles": ["corporate"], **chosen},
    }


@router.get("/teams/new", response_class=HTMLResponse)
def new_team_page(request: Request) -> HTMLResponse:
    return render(request, "team_new.html", _form_values(request))


@router.post("/teams/new")
async def new_team(request: Request) -> Response:
    runtime = runtime_of(request)
    form = await read_page_form(request)
    styles = [s for s in form.fields.get("styles", []) if s.strip()]
    try:
        csrf_of(request).check(request, form.first(CSRF_FIELD))
        limiter_of(request).take(client_address(request))
        try:
            seats, days = int(form.first("seats")), int(form.first("days") or 7)
        except ValueError:
            raise FormError("Give the number of seats and days as whole numbers.") from None
        with transaction(runtime.sessions) as session:
            created = teams.create_team(
                session,
                runtime.settings,
                runtime.tiers,
                name=form.first("name"),
                seats=seats,
                style_ids=styles,
                backdrop=form.first("backdrop") or None,
                expires_in_days=days,
            )
            team_id, expires_at = created.team.id, created.team.expires_at
    except HeadshotsError as error:
        values = _form_values(request, name=form.first("name"), styles=styles)
        return render(
            request, "team_new.html", {**values, "error": error}, status_code=error.status_code
        )
    response = RedirectResponse(f"{TEAM_PAGES}/{team_id}", status_code=303)
    max_age = int((expires_at - utcnow()).total_seconds())
    set_cookie(
        request, response, runtime.settings, f"team_{team_id}", created.admin_token, max_age=max_age
    )
    return response


@router.get("/teams/{team_id}", response_class=HTMLResponse)
def team_page(request: Request, team_id: str) -> HTMLResponse:
    runtime = runtime_of(request)
    token = _admin_token(request, team_id)
    try:
        with transaction(runtime.sessions) as session:
            team = teams.open_team(session, team_id, token)
            view = team_of(session, team, TEAM_PAGES)
            assert token is not None
            code = teams.invite_code_of(team.id, token)
    except HeadshotsError as error:
        return error_page(request, error)
    base = base_url(request, runtime)
    return render(
        request,
        "team.html",
        {
            "team": view,
            "invite_url": base.rstrip("/") + invite_path(code),
            "price": format_price(view.amount_cents, view.currency),
            "seat_price": format_price(view.seat_price_cents, view.currency),
            "styles": [get_style(s).title for s in view.styles],
            "time_left": time_left(view.expires_at),
            "members": [
                {**m.model_dump(), "time_left": time_left(m.order_expires_at)}
                if m.order_expires_at
                else {**m.model_dump(), "time_left": None}
                for m in view.members
            ],
            "picks": sum(len(m.picks) for m in view.members),
            "confirming": request.query_params.get("paid") == "1" and not view.paid,
        },
        headers=NO_STORE,
    )


@router.get("/teams/{team_id}/download.zip")
def team_page_zip(request: Request, team_id: str) -> Response:
    return team_zip_response(runtime_of(request), team_id, _admin_token(request, team_id))


@router.post("/teams/{team_id}/pay")
async def team_pay(request: Request, team_id: str) -> Response:
    runtime = runtime_of(request)
    form = await read_page_form(request)
    try:
        csrf_of(request).check(request, form.first(CSRF_FIELD))
        back = base_url(request, runtime)

        def work() -> str:
            with transaction(runtime.sessions) as session:
                return teams.open_checkout(
                    session,
                    runtime.payments,
                    team_id,
                    _admin_token(request, team_id),
                    base_url=back,
                    page=f"{TEAM_PAGES}/{team_id}",
                )

        url = await run_in_threadpool(work)
    except teams.TeamAlreadyPaid:
        return RedirectResponse(f"{TEAM_PAGES}/{team_id}", status_code=303)
    except HeadshotsError as error:
        return error_page(request, error)
    return RedirectResponse(url, status_code=303)


@router.post("/teams/{team_id}/end")
async def team_end(request: Request, team_id: str) -> Response:
    runtime = runtime_of(request)
    form = await read_page_form(request)
    try:
        csrf_of(request).check(request, form.first(CSRF_FIELD))
        with transaction(runtime.sessions) as session:
            team = teams.open_team(session, team_id, _admin_token(request, team_id))
            teams.end_team(session, runtime.blobs, team)
    except HeadshotsError as error:
        return error_page(request, error)
    return RedirectResponse(f"{TEAM_PAGES}/{team_id}", status_code=303)


# --- the invite: a member's upload ------------------------------------------------------


def _invite_view(team: Team) -> dict[str, Any]:
    return {
        "team_name": team.name,
        "styles": [get_style(s) for s in team.styles],
        "backdrop": team.backdrop,
    }


@router.get("/t/{code}", response_class=HTMLResponse)
def invite_page(request: Request, code: str) -> HTMLResponse:
    runtime = runtime_of(request)
    try:
        with transaction(runtime.sessions) as session:
            team = teams.check_invite(session, code)
            view = _invite_view(team)
    except HeadshotsError as error:
        return error_page(request, error)
    return render(request, "invite.html", {**view, "code": code}, headers=NO_STORE)


@router.post("/t/{code}")
async def invite_upload(request: Request, code: str) -> Response:
    runtime = runtime_of(request)
    settings = runtime.settings
    view: dict[str, Any] = {}
    try:
        limiter_of(request).take(client_address(request))
        form = await read_form(
            request, file_fields={"selfie", "selfie_file"}, max_file_bytes=settings.max_upload_bytes
        )
        csrf_of(request).check(request, form.fields.get(CSRF_FIELD, [None])[0])
        photo = form.files.get("selfie") or form.files.get("selfie_file")
        display_name = form.first("display_name") or None

        def work() -> teams.Joined:
            with transaction(runtime.sessions) as session:
                view.update(_invite_view(teams.check_invite(session, code)))
            if not photo:
                raise FormError("Choose a photo of yourself first.")
            return intake.order_for_team(runtime, photo, code=code, display_name=display_name)

        joined = await run_in_threadpool(work)
    except HeadshotsError as error:
        if not view:
            return error_page(request, error)
        return render(
            request,
            "invite.html",
            {**view, "code": code, "error": error},
            status_code=error.status_code,
            headers=error.headers,
        )
    order = joined.created.order
    response = RedirectResponse(f"/orders/{order.id}", status_code=303)
    max_age = int((order.expires_at - utcnow()).total_seconds())
    token = joined.created.token
    set_cookie(request, response, settings, f"order_{order.id}", token, max_age=max_age)
    return response


# --- a member's pick, from the order page ----------------------------------------------


@router.post("/orders/{order_id}/variations/{variation_id}/pick")
async def pick_page(request: Request, order_id: str, variation_id: str) -> Response:
    from headshots.web.teams import pick_response

    runtime = runtime_of(request)
    form = await read_page_form(request)
    token = request.cookies.get(f"order_{order_id}")
    try:
        csrf_of(request).check(request, form.first(CSRF_FIELD))
        if form.first("action") == "take_back":
            await run_in_threadpool(take_back_pick, runtime, order_id, variation_id, token)
        else:
            await run_in_threadpool(pick_response, runtime, order_id, variation_id, token)
    except HeadshotsError as error:
        return error_page(request, error)
    return RedirectResponse(f"/orders/{order_id}#team", status_code=303)
