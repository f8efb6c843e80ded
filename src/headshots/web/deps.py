"""What the API's routes and the pages take from a request: the runtime, an order's token, a choice.

The API reads an order's token from ``Authorization: Bearer``; the pages
from the order's HttpOnly cookie (decision 0003). Each is read here only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from headshots.backdrops import Backdrop, parse_backdrop
from headshots.errors import HeadshotsError
from headshots.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(runtime_of)]


def bearer(authorization: Annotated[str | None, Header()] = None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


TokenDep = Annotated[str | None, Depends(bearer)]


def order_cookie(request: Request, order_id: str) -> str | None:
    return request.cookies.get(f"order_{order_id}")


def draft_cookie(request: Request, draft_id: str) -> str | None:
    return request.cookies.get(f"draft_{draft_id}")


def base_url(request: Request, runtime: Runtime) -> str:
    """This service's address for links back to it (a checkout's return, for one).

    Without HEADSHOTS_PUBLIC_URL the request's host is used, which
    web.guards has checked against the allowed hosts.
    """
    return runtime.settings.public_url or str(request.base_url)


class InvalidBackdrop(HeadshotsError):
    status_code = 422
    code = "invalid_backdrop"
    message = "That backdrop is not one we know."


def backdrop_asked(value: str | None) -> Backdrop | None:
    """The backdrop a form asks for (a name, ``#RRGGBB`` or nothing), or a 422 with a sentence."""
    try:
        return parse_backdrop(value)
    except ValueError as error:
        raise InvalidBackdrop(str(error)) from None
