"""Errors a person can act on.

Every refusal in the project is a subclass of :class:`HeadshotsError`. Its
message is a complete sentence written for the person who uploaded the photo or
runs the service, so the CLI prints it as is and the API returns it with the
HTTP status the class carries. Internal faults are ordinary exceptions and never
reach a person verbatim.
"""

from __future__ import annotations

from typing import ClassVar


class HeadshotsError(Exception):
    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    message: ClassVar[str] = "The request could not be handled."

    def __init__(self, message: str | None = None) -> None:
        self.detail = message or self.message
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
