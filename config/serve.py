"""Roomkey's production server (`make serve`): uvicorn, one worker process per core, with the
server's limits matched to the application's, so no client holds memory or connections the
application would refuse anyway.

- WebSocket messages: the largest frame a Roomkey socket accepts (the relay's and the voice
  socket's caps), not uvicorn's 16 MiB. A bigger frame is refused from its header (close 1009)
  before its payload is read.
- Request heads: at most ROOMKEY_SERVE_MAX_HEAD_BYTES of request line and headers (431), and
  the head must arrive within ROOMKEY_SERVE_HEAD_TIMEOUT seconds of the connection (or of the
  previous response); a connection that sends half a head is closed, not held.
- Request bodies: the whole body within ROOMKEY_SERVE_BODY_TIMEOUT seconds of the head (its
  size is capped by ROOMKEY_MAX_BODY_BYTES in tokens.asgi).
- Connections: at most ROOMKEY_SERVE_MAX_CONNECTIONS per worker, HTTP and WebSocket alike, and
  at most ROOMKEY_SERVE_MAX_UPLOADS requests receiving a body at once (what the server buffers
  is then at most that many times ROOMKEY_MAX_BODY_BYTES); a request or handshake over a cap is
  answered 503 in its path's error format, with Retry-After.

Environment: HOST (127.0.0.1), PORT (8000), WORKERS (the number of cores), and every
DJANGO_*/DATABASE_URL/REDIS_URL/ROOMKEY_* setting of config.settings.
"""

import json
import os

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_TIMEOUT = float(os.environ.get("ROOMKEY_SERVE_HEAD_TIMEOUT", "10"))
BODY_TIMEOUT = float(os.environ.get("ROOMKEY_SERVE_BODY_TIMEOUT", "30"))
MAX_HEAD_BYTES = int(os.environ.get("ROOMKEY_SERVE_MAX_HEAD_BYTES", str(32 * 1024)))
MAX_CONNECTIONS = int(os.environ.get("ROOMKEY_SERVE_MAX_CONNECTIONS", "1000"))
MAX_UPLOADS = int(os.environ.get("ROOMKEY_SERVE_MAX_UPLOADS", "64"))

_uploads = 0  # requests of this worker whose body is being received


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request's head and body, a cap on
    the head's size, and the per-worker connection cap answered in the path's format."""

    _deadline = None
    _head_bytes = 0
    _answered = False  # the server answered this connection itself and is closing it
    _over_cap = False
    _uploading = False

    # --- Deadlines ----------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm(HEAD_TIMEOUT)
        self._over_cap = len(self.connections) > MAX_CONNECTIONS

    def connection_lost(self, exc) -> None:
        self._disarm()
        self._upload_done()
        super().connection_lost(exc)

    def _upload_done(self) -> None:
        global _uploads
        if self._uploading:
            self._uploading = False
            _uploads -= 1

    def _has_body(self) -> bool:
        for name, value in self.headers:
            if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                return True
        return False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._deadline is None:  # a keep-alive connection's next request
            self._arm(HEAD_TIMEOUT)

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES and not self._answered:
            self._answer(431, self._path(), "Request header fields too large.")
        if self._answered:
            raise ConnectionAbortedError  # stops the parser; uvicorn's 400 is suppressed below

    def on_headers_complete(self) -> None:
        if self._answered:
            return
        global _uploads
        if self._over_cap:
            self._answer(503, self._path(), "The server is at its connection limit.")
            return
        if self._has_body():
            if _uploads >= MAX_UPLOADS:
                self._answer(503, self._path(), "The server is receiving too many bodies.")
                return
            self._uploading = True
            _uploads += 1
        self._arm(BODY_TIMEOUT)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._answered:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._answered:
            return
        self._disarm()
        self._upload_done()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        if not self._answered:
            super().handle_websocket_upgrade()

    def data_received(self, data: bytes) -> None:
        if not self._answered:
            super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        if not self._answered:
            super().send_400_response(msg)

    # --- Answers before the application -------------------------------------------------

    def _path(self) -> str:
        url = getattr(self, "url", b"") or b""
        return url.split(b"?", 1)[0].decode("latin-1")

    def _answer(self, status: int, path: str, message: str) -> None:
        """An error answered by the server itself, in the path's error format, then close."""
        self._answered = True
        self._disarm()
        body, content_type = _error_body(status, path, message)
        reason = {431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}[status]
        head = [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"content-type: " + content_type + b"\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n",
        ]
        if status == 503:
            head.append(b"retry-after: 1\r\n")
        self.transport.write(b"".join(head) + b"\r\n" + body)
        self.transport.close()


def _error_body(status: int, path: str, message: str) -> tuple[bytes, bytes]:
    from tokens.errors import ApplicationError, BadRequest, Unavailable, format_for_path

    error_format = format_for_path(path)
    if error_format is None:
        return message.encode(), b"text/plain; charset=utf-8"
    error: ApplicationError = (
        Unavailable(message) if status == 503 else BadRequest(message, status=status)
    )
    _, body = error_format.render([error], base_url="")
    return json.dumps(body, separators=(",", ":")).encode(), b"application/json"


def ws_max_size() -> int:
    """The largest WebSocket message any Roomkey socket accepts."""
    from agents.conf import agents_settings
    from chat.conf import chat_settings

    return max(chat_settings.MAX_FRAME_BYTES, agents_settings.VOICE_FRAME_MAX_BYTES)


def config_kwargs() -> dict:
    """uvicorn's settings for Roomkey in production (also used by the tests' servers)."""
    return {
        "http": GuardedHttpProtocol,
        "ws": "websockets-sansio",
        "ws_max_size": ws_max_size(),
        "lifespan": "off",
        "proxy_headers": os.environ.get("ROOMKEY_FORWARDED_ALLOW_IPS", "") != "",
        "forwarded_allow_ips": os.environ.get("ROOMKEY_FORWARDED_ALLOW_IPS") or None,
        "timeout_keep_alive": 5,
    }


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    uvicorn.run(
        "config.asgi:application",
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        workers=int(os.environ.get("WORKERS") or os.cpu_count() or 1),
        **config_kwargs(),
    )


if __name__ == "__main__":
    main()
