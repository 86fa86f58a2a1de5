"""ASGI middleware that bounds request bodies before Django reads them.

Django's ASGI handler spools a whole request body (to disk past a threshold) before routing or
authentication, so without this anyone could upload gigabytes unauthenticated. Bodies without
a Content-Length (chunked) are read here up to the limit and handed on with one, because DRF
treats a body without Content-Length as empty.
"""

import json

from .api import signalwire_error
from .conf import roomkey_settings

# Paths whose contract has its own error format (seed 000: SignalWire's 422 errors list).
SIGNALWIRE_PATHS = frozenset(
    {"/api/chat/tokens", "/api/fabric/messages", "/api/fabric/conversations/join"}
)


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
    if scope.get("path") in SIGNALWIRE_PATHS:
        host = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
        error = signalwire_error(
            code="body_too_large",
            message=message,
            attribute=None,
            docs_url=f"{scope.get('scheme', 'http')}://{host}/#errors",
            type_="invalid_request_error",
        )
        status, body = 422, {"errors": [error]}
    else:
        status, body = 413, {"detail": message}
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
