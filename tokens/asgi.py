"""ASGI middleware that bounds request bodies before Django reads them.

Django's ASGI handler spools a whole request body (to disk past a threshold) before routing or
authentication, so without this anyone could upload gigabytes unauthenticated. Bodies without
a Content-Length (chunked) are read here up to the limit and handed on with one, because DRF
treats a body without Content-Length as empty.
"""

import json
import logging
import re

from .conf import roomkey_settings
from .errors import BadRequest, format_for_path


def _answer(scope, message: str) -> tuple[int, dict]:
    """An oversize body's answer in the error format registered for the path (each contract's
    own: SignalWire's 422 list, Vatel's and the web-call envelopes), else 413 {"detail": …}."""
    error_format = format_for_path(scope.get("path", ""))
    if error_format is None:
        return 413, {"detail": message}
    host = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
    base_url = f"{scope.get('scheme', 'http')}://{host}" if host else ""
    error = BadRequest(message, code="body_too_large", status=413)
    return error_format.render([error], base_url=base_url)


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(scope, send, limit: int) -> None:
    message = f"Request body is larger than {limit} bytes."
    status, body = _answer(scope, message)
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class RequestBodyLimit:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = roomkey_settings.MAX_BODY_BYTES
        length = _content_length(scope)
        if length is not None:
            if length > limit:
                return await _refuse(scope, send, limit)
            return await self.app(scope, receive, send)

        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > limit:
                return await _refuse(scope, send, limit)
            if not message.get("more_body", False):
                break
        headers = [
            (name, value)
            for name, value in scope["headers"]
            if name not in (b"content-length", b"transfer-encoding")
        ]
        headers.append((b"content-length", str(len(body)).encode()))
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app({**scope, "headers": headers}, replay, send)


# --- Tokens in URLs stay out of the server's log ----------------------------------------------

_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s\"]+")


class RedactQueryTokens(logging.Filter):
    """Blanks `token=` query values in a record's arguments. The voice-session socket takes its
    token in the URL (the path Vatel's clients use), and uvicorn logs every WebSocket and
    request path with its query string at INFO."""

    def filter(self, record):
        if isinstance(record.args, tuple) and any(
            isinstance(arg, str) and "token=" in arg for arg in record.args
        ):
            record.args = tuple(
                _TOKEN_IN_QUERY.sub(r"\1[redacted]", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


_redact = RedactQueryTokens()


def redact_query_tokens(loggers=("uvicorn.error", "uvicorn.access")) -> None:
    """Install the filter on uvicorn's loggers (idempotent); config.asgi does at import."""
    for name in loggers:
        logger = logging.getLogger(name)
        if _redact not in logger.filters:
            logger.addFilter(_redact)
