"""Teams: one organiser pays for seats; each member's order stays the member's own.

A team holds a name, the look every member gets (styles, optional
backdrop), a seat count, an expiry (1 to 14 days) and the organiser's
bearer token (hashed). Its invite code is a secret of its own, derived from
the admin token so the organiser's page can show it again and stored only
as a hash. A member who joins gets an ordinary order, prepaid by the team,
with their own token and the usual 24 hours. The only image that may
outlive that order is a pick: a copy of one final PNG the member hands to
the organiser, sealed under a data key of its own and shredded when the
team ends, the organiser deletes it, the member takes it back or deletes
their order, or after 14 days (docs/decisions/0017-team-mode.md).

    models     the tables: teams, team_members, team_picks
    service    create, pay, join (one seat, once), the organiser's view, end, revoke, sweep
    picks      pick, take back, the organiser's zip
    shredding  every end of a pick: key row deleted, blobs deleted
"""
