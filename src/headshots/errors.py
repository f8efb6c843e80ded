"""Errors a person can act on.

Every refusal in the project is a subclass of :class:`HeadshotsError`. Its
message is a complete sentence written for the person who uploaded the photo or
runs the service, so the CLI prints it as is and the API returns it with the
HTTP status, code and headers the error carries. Internal faults are ordinary
exceptions and never reach a person verbatim.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class HeadshotsError(Exception):
    """A refusal with its sentence, HTTP status, stable code and response headers.

    A subclass names its defaults as class attributes; a raise site that knows
    better (the preflight's own finding, a 404 shown as a page, a rate limit's
    Retry-After) passes them to the constructor, so no instance is patched
    after it is made.
    """

    status_code: int = 400
    code: str = "bad_request"
    message: ClassVar[str] = "The request could not be handled."
    # Sent with every response for this error; a raise site's headers add to them.
    headers: Mapping[str, str] = {}

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.detail = message or self.message
        if status_code is not None:
            self.status_code = status_code
        if code is not None:
            self.code = code
        if headers is not None:
            self.headers = {**self.headers, **headers}
        super().__init__(self.detail)


class ConfigurationError(HeadshotsError):
    """The operator's settings are wrong; the service cannot do its job."""

    status_code = 503
    code = "configuration"
    message = "The service is not configured correctly."


class UnknownStyleError(HeadshotsError):
    status_code = 422
    code = "unknown_style"
    message = "That style does not exist."
