"""The agents' errors, in tokens.errors' vocabulary, and the error formats of the two seed
contracts agents serves: Vatel's (seed 003, `/v1/…`) and the web-call envelope (seed 004,
`/web_call/…`). Roomkey's own API (`/api/v1/…`) answers in DRF's format (tokens.errors).

A class's docstring is its default message; each format decides the status and body.
"""

from tokens.errors import (
    ApplicationError,
    BadInput,
    Conflict,
    ErrorFormat,
    Forbidden,
    NotFound,
    Unavailable,
)

# --- Errors -------------------------------------------------------------------------------


class Unprocessable(BadInput):
    """The request is well formed but the data refuses it (a draft version, an agent without
    an active version, a template that fills past a limit)."""


class LimitExceeded(BadInput):
    """A value is over one of LiveKit's limits."""


class TemplateTooLong(BadInput):
    """The filled template is too long."""


class LiveKitNotConfigured(Unavailable):
    """LiveKit is not configured for this project."""


class RoomEnded(Conflict):
    """The room has ended."""


class FieldsNotAllowed(Forbidden):
    """Fields the project does not let clients of the token-source endpoint set; `fields`
    lists them, in the message and as a member of the error body."""

    def __init__(self, fields: list[str]):
        self.fields = list(fields)
        super().__init__(
            f"This project does not let clients set: {', '.join(self.fields)}.",
            fields=self.fields,
        )


class SessionNotFound(NotFound):
    """No such session."""


class SessionExists(Conflict):
    """A session with this call id exists already."""

    code = "exists"


class SessionEnded(Conflict):
    """The session has ended."""

    code = "ended"


class BadMetadata(BadInput):
    """The metadata is not acceptable."""

    code = "invalid_metadata"

    def __init__(self, message: str | None = None, **kwargs):
        kwargs.setdefault("field", "metadata")
        super().__init__(message, **kwargs)


# --- Formats of the seed contracts ----------------------------------------------------------


class SeedErrors(ErrorFormat):
    """What seeds 003 and 004 share: one message per answer, and the statuses their contracts
    list. 401 has the contract's own message; 404 and 405 keep theirs; every other refusal
    (an invalid field, as "field: message" of the first error, malformed JSON, a wrong content
    type, a body over the limit) is a 422; a dependency that is down (the database) is a 503
    with its message, so clients retry; a server fault is a 500, with its message when it is
    a missing configuration (LiveKit not configured), else the contract's."""

    unauthorized = "Invalid or missing API key."
    internal_error = "Internal server error."

    def envelope(self, message: str) -> dict:
        raise NotImplementedError

    def render(self, errors, *, base_url):
        status, message = self.status_and_message(errors[0])
        return status, self.envelope(message)

    def status_and_message(self, error: ApplicationError) -> tuple[int, str]:
        if error.status == 401:
            return 401, self.unauthorized
        if error.status in (404, 405, 429):
            return error.status, error.message
        if isinstance(error, LiveKitNotConfigured):
            return 500, error.message
        if isinstance(error, Unavailable):
            return 503, error.message
        if error.status >= 500:
            return 500, self.internal_error
        return 422, error.described


class VatelErrors(SeedErrors):
    """Seed 003 (`POST /v1/session-token`): `{"error": "<message>"}`."""

    def envelope(self, message):
        return {"error": message}


class WebCallErrors(SeedErrors):
    """Seed 004 (`POST /web_call/get_token`): `{"success": false, "message": …, "data": null}`."""

    unauthorized = "Invalid or missing Bearer token."
    internal_error = "Internal error while generating the token."

    def envelope(self, message):
        return {"success": False, "message": message, "data": None}


VATEL_ERRORS = VatelErrors()
WEB_CALL_ERRORS = WebCallErrors()
