"""Chat's application errors, and how chat's two wire contracts answer them.

Chat raises `tokens.errors`' vocabulary: `BadInput` with its field for input over a documented
limit (chat.validation), `Forbidden`, `NotFound`, `Unauthorized`, and the few errors below.

- HTTP (the chat-token endpoint, seed 000, and the Fabric paths) answers in SignalWire's REST
  format, `SignalWireErrors`: one class, one instance per contract.
- The relay WebSocket answers a JSON-RPC request it refuses with `relay_answer`: a JSON-RPC
  error for a protocol fault, a result with SignalWire's status code for a `chat.*` request
  the token does not allow or whose params are wrong (both reject the client's promise).
"""

from tokens import live
from tokens.errors import (
    ApplicationError,
    BadInput,
    ErrorFormat,
    Forbidden,
    Unauthorized,
    Unavailable,
)


class InvalidChannelName(BadInput):
    """The name is empty, too long, reserved (`sw_`), not a string or has control or
    bidirectional-override characters; the message says which (chat.names)."""


class InvalidCursor(BadInput):
    """Cursor is not valid."""


class NotGranted(Forbidden):
    """The token does not grant this channel."""

    code = "permission_denied"


class ChatAuthError(Unauthorized):
    """The token is not a usable chat token. Clients are not told why (malformed, expired,
    revoked…), as introspection does not tell; `reason` (tokens.services.Verification's) is for
    the server's log."""

    code = "auth_failed"

    def __init__(self, reason: str):
        super().__init__("Authentication failed.")
        self.reason = reason


# --- SignalWire's REST format -------------------------------------------------------------

# DRF's validation codes as SignalWire names them; other codes are SignalWire's already.
_CODES = {
    "required": "missing_required_parameter",
    "null": "invalid_parameter",
    "invalid": "invalid_parameter",
    "min_value": "out_of_range",
    "max_value": "out_of_range",
    "max_length": "too_long",
    "blank": "too_short",
}

# Requests whose body cannot be read (malformed, oversized, of another content type):
# SignalWire answers them 422, as it answers invalid input.
UNREADABLE = frozenset({400, 413, 415})


class SignalWireErrors(ErrorFormat):
    """SignalWire's REST errors: 401 `{"error": "Unauthorized"}` with a `challenge`; every
    other error `{"errors": [{type, code, message, attribute, url}]}`, one item per error,
    where `url` is the server's documentation at `docs` and invalid input is a
    "validation_error" naming its attribute. Statuses in `as_422` are answered 422."""

    def __init__(self, *, challenge: str, docs: str, as_422: frozenset[int]):
        self.challenge = challenge
        self.docs = docs
        self.as_422 = as_422

    def render(self, errors, *, base_url):
        first = errors[0]
        if first.status == 401:
            return 401, {"error": "Unauthorized"}
        status = 422 if first.status in self.as_422 else first.status
        return status, {"errors": [self.item(error, base_url) for error in errors]}

    def item(self, error: ApplicationError, base_url: str) -> dict:
        if isinstance(error, BadInput):
            type_, code = "validation_error", _CODES.get(error.code, error.code)
        else:
            type_ = "server_error" if error.status >= 500 else "invalid_request_error"
            code = error.code
        return {
            "type": type_,
            "code": code,
            "message": error.message,
            "attribute": error.field,
            "url": base_url + self.docs,
        }


# Seed 000, POST /api/chat/tokens (API-key auth, Basic as SignalWire's SDKs send it): every
# request it cannot serve is a 422, an unacceptable Accept header included; a wrong method is
# a 405 and a path it does not serve a 404.
CHAT_TOKEN_ERRORS = SignalWireErrors(
    challenge='Basic realm="roomkey"', docs="/#errors", as_422=UNREADABLE | {406}
)

# The Fabric paths (chat-token auth): 403 for a channel the token does not grant, 404 for an
# unknown address or path, 405, 406 as they are.
FABRIC_ERRORS = SignalWireErrors(
    challenge='Bearer realm="roomkey"', docs="/#chat", as_422=UNREADABLE
)


# --- The relay's JSON-RPC -----------------------------------------------------------------

# JSON-RPC 2.0 error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_AUTHENTICATED = -32001  # a chat request before signalwire.connect succeeded
AUTH_FAILED = -32002  # a token that is not a usable chat token
RATE_LIMITED = -32029  # a request over the socket's rate (data: retry_after)
QUOTA_EXCEEDED = -32030  # the project's quota of relay sockets is reached

# Protocol faults: the application-error codes answered with a JSON-RPC error. "invalid_request"
# is tokens.errors.BadRequest's own code.
RPC_CODES = {
    "parse_error": PARSE_ERROR,
    "invalid_request": INVALID_REQUEST,
    "method_not_found": METHOD_NOT_FOUND,
    "invalid_params": INVALID_PARAMS,
    "not_authenticated": NOT_AUTHENTICATED,
    ChatAuthError.code: AUTH_FAILED,
    "rate_limited": RATE_LIMITED,
    "quota_exceeded": QUOTA_EXCEEDED,
}


def relay_answer(rid, error: ApplicationError) -> tuple[dict, tuple[int, str] | None]:
    """(the frame answering request `rid` with `error`, (close code, reason) or None).

    A protocol fault is a JSON-RPC error and a failure of ours -32603 "Internal error."; the
    socket stays open. Any other error is a result with SignalWire's code ("400" for bad
    input, else the HTTP status) and the input's `attribute` if it names one. A chat token
    refused at `signalwire.connect` (ChatAuthError) closes the socket after the answer: it
    will not become valid by retrying on this socket; so does a quota reached at
    `signalwire.connect` (the error's `close_code`). A dependency that is down (the database)
    is -32603 with its message, and the socket closes with 1013 so the client reconnects later.
    The error's extra members (a rate limit's `retry_after`) are the JSON-RPC error's `data`.
    """
    if isinstance(error, Unavailable):
        return _rpc_error(rid, INTERNAL_ERROR, error.message), (live.CLOSE_UNAVAILABLE, error.code)
    rpc_code = RPC_CODES.get(error.code)
    if rpc_code is None and error.status >= 500:
        return _rpc_error(rid, INTERNAL_ERROR, "Internal error."), None
    if rpc_code is not None:
        close = None
        if isinstance(error, ChatAuthError):
            close = (live.CLOSE_INVALID_TOKEN, "invalid token")
        elif error.code == "quota_exceeded":
            close = (error.close_code, error.code)
        return _rpc_error(rid, rpc_code, error.message, error.extra), close
    result = {"code": str(400 if isinstance(error, BadInput) else error.status)}
    result["message"] = error.message
    if error.field:
        result["attribute"] = error.field
    return {"jsonrpc": "2.0", "id": rid, "result": result}, None


def _rpc_error(rid, code: int, message: str, data: dict | None = None) -> dict:
    error = {"code": code, "message": message}
    if data:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": rid, "error": error}
