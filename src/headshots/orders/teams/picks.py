"""Picks: the headshots a member hands to their team's organiser, by consent.

A pick is a copy of one final PNG (with its Content Credentials), sealed
under a data key of its own. It is the only image of a member that may
outlive their order's 24 hours: until the team ends, the organiser deletes
it, the member takes it back or deletes their order, or 14 days pass,
whichever comes first (orders.teams.shredding does each). The organiser
sees picks and nothing else of a member's: no preview, no selfie, no other
image.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from headshots.errors import HeadshotsError
from headshots.imaging import codecs
from headshots.orders import ids, service
from headshots.orders.models import SHOWABLE, Order, utcnow
from headshots.orders.teams.models import Member, Pick, Team
from headshots.orders.teams.service import PICK_LIFETIME, TeamGone, TeamNotFound, open_team
from headshots.orders.teams.shredding import shred_picks
from headshots.storage.vault import EncryptedBlobs

PICK_BLOB = "pick.png"


class NotInTeam(HeadshotsError):
    status_code = 409
    code = "not_in_team"
    message = "This order is not part of a team: there is no organiser to give a picture to."


class NotPicked(HeadshotsError):
    status_code = 404
    code = "not_found"
    message = "This image is not given to your team."


@dataclass(frozen=True)
class MemberTeam:
    """What a member's order knows of its team."""

    team: Team
    member: Member
    picks: list[Pick]


def member_team(session: Session, order: Order) -> MemberTeam | None:
    member = session.scalars(select(Member).where(Member.order_id == order.id)).first()
    if member is None:
        return None
    return MemberTeam(team=member.team, member=member, picks=list(member.picks))


def _live_team_of(session: Session, order: Order, now: datetime) -> MemberTeam:
    joined = member_team(session, order)
    if joined is None:
        raise NotInTeam()
    if joined.team.has_ended or joined.team.expires_at <= now:
        raise TeamGone("This team has ended: its organiser can no longer receive pictures.")
    return joined


def pick(
    session: Session,
    blobs: EncryptedBlobs,
    *,
    order_id: str,
    token: str | None,
    variation_id: str,
    png: bytes,
) -> Pick:
    """Give a copy of one finished headshot (``png``, as downloaded) to the organiser.

    Picking the same image again changes nothing and answers the same pick.
    """
    now = utcnow()
    order = service.open_order(session, order_id, token)
    variation = service.find_variation(order, variation_id)
    joined = _live_team_of(session, order, now)
    if variation.status not in SHOWABLE or not png.startswith(codecs.PNG_SIGNATURE):
        raise service.NotReady()
    existing = session.scalars(select(Pick).where(Pick.variation_id == variation.id)).first()
    if existing is not None:
        return existing
    picked = Pick(
        id=ids.new_id(),
        team_id=joined.team.id,
        member_id=joined.member.id,
        order_id=order.id,
        variation_id=variation.id,
        style=variation.style,
        index=variation.index,
        created_at=now,
        expires_at=min(now + PICK_LIFETIME, joined.team.expires_at),
    )
    wrapped_key = blobs.new_wrapped_key(picked.id)
    picked.wrapped_key = wrapped_key
    try:
        blobs.put(picked.id, wrapped_key, PICK_BLOB, png)
        # A savepoint: when the same image is given twice at once, the
        # second insert meets the first's row, and this answers that pick.
        with session.begin_nested():
            session.add(picked)
            session.flush()
    except IntegrityError:
        blobs.shred(picked.id)
        first = session.scalars(select(Pick).where(Pick.variation_id == variation.id)).first()
        if first is None:
            raise
        return first
    except BaseException:
        blobs.shred(picked.id)
        raise
    return picked


def take_back(
    session: Session, blobs: EncryptedBlobs, *, order_id: str, token: str | None, variation_id: str
) -> list[str]:
    """The member takes a pick back: shredded now. 404 if it was not picked."""
    order = service.open_order(session, order_id, token)
    picks = session.scalars(
        select(Pick).where(Pick.order_id == order.id, Pick.variation_id == variation_id)
    ).all()
    shredded = shred_picks(session, blobs, picks)
    if not shredded:
        raise NotPicked()
    return shredded


def delete_pick(
    session: Session, blobs: EncryptedBlobs, *, team_id: str, token: str | None, pick_id: str
) -> None:
    """The organiser has the picture and deletes the team's copy."""
    team = open_team(session, team_id, token)
    picks = [p for p in team.picks if p.id == pick_id]
    if not shred_picks(session, blobs, picks):
        raise TeamNotFound("There is no such picture in this team.")


@dataclass(frozen=True)
class ZipEntry:
    name: str
    pick_id: str
    wrapped_key: bytes


def zip_entries(session: Session, team_id: str, token: str | None) -> list[ZipEntry]:
    """Each pick with the file name the organiser's zip gives it; 410 once the team ended."""
    team = open_team(session, team_id, token)
    if team.has_ended:
        raise TeamGone("This team has ended: every picture it held is destroyed.")
    numbers = {member.id: number for number, member in enumerate(team.members, start=1)}
    entries = []
    for picked in team.picks:
        if picked.wrapped_key is None:
            continue
        label = _file_label(picked.member.display_name) or "member"
        number = numbers.get(picked.member_id, 0)
        name = f"{number:02d}-{label}-{picked.style}-{picked.index}.png"
        entries.append(ZipEntry(name=name, pick_id=picked.id, wrapped_key=picked.wrapped_key))
    return entries


def _file_label(display_name: str | None) -> str:
    """A display name as a safe part of a file name: ASCII letters, digits and dashes."""
    text = unicodedata.normalize("NFKD", display_name or "").encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40]
