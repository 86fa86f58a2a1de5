"""The production server (`make serve`, config/serve.py): its limits match the application's, so
hostile clients cannot hold memory or connections the application would refuse anyway. Each test
runs the real server process and talks to it over raw sockets, as such clients do."""

import base64
import json
import os
import socket
import struct
import sys
import time
from contextlib import contextmanager

import pytest

from tests.servers import free_port, prepare_database, server_env, serving

HEAD_LIMIT = 4096
MAX_CONNECTIONS = 4
MAX_UPLOADS = 2
FRAME_CAP = 128 * 1024  # the relay's frame cap, the larger of the two sockets'


@contextmanager
def serve(env: dict, **limits):
    port = free_port()
    env = {
        **env,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "1",
        **{f"ROOMKEY_SERVE_{name.upper()}": str(value) for name, value in limits.items()},
    }
    with serving([sys.executable, "-m", "config.serve"], env, port):
        yield port


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory):
    env = server_env(f"sqlite:///{tmp_path_factory.mktemp('serve') / 'db.sqlite3'}")
    prepare_database(env)
    return env


@pytest.fixture(scope="module")
def server(demo_env):
    with serve(
        demo_env,
        head_timeout=1,
        body_timeout=1,
        max_head_bytes=HEAD_LIMIT,
        max_connections=MAX_CONNECTIONS,
    ) as port:
        yield port


@pytest.fixture(scope="module")
def capped_server(demo_env):
    """Held connections stay open here (a long head timeout), so the cap is what refuses."""
    with serve(
        demo_env, head_timeout=60, max_connections=MAX_CONNECTIONS, max_uploads=MAX_UPLOADS
    ) as port:
        yield port


def _connect(port) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def _closed_within(sock, seconds: float) -> bool:
    """True if the server closes `sock` (EOF or reset) within `seconds`."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _response(sock) -> tuple[int, dict, bytes]:
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers = {name.lower(): value for name, value in headers.items()}
    length = int(headers.get("content-length", 0))
    while len(body) < length:
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


def test_half_a_request_head_is_closed_after_the_head_timeout(server):
    sock = _connect(server)
    sock.sendall(b"POST /api/chat/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    assert _closed_within(sock, 3)


def test_a_body_that_stops_arriving_is_closed_after_the_body_timeout(server):
    sock = _connect(server)
    sock.sendall(
        b"POST /api/chat/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ttl":'
    )
    assert _closed_within(sock, 3)


def _head(path: str, host_port: int, padding: int) -> tuple[bytes, int]:
    """A request head for `path` whose size as the server counts it (URL, and each header's
    name and value plus 4) is returned beside it, with an X-Pad header of `padding` bytes."""
    headers = [("Host", f"127.0.0.1:{host_port}"), ("X-Pad", "a" * padding)]
    counted = len(path) + sum(len(n) + len(v) + 4 for n, v in headers)
    lines = [f"GET {path} HTTP/1.1"] + [f"{n}: {v}" for n, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), counted


@pytest.mark.parametrize(
    ("path", "error_of"),
    [
        ("/api/v1/tokens/introspect", lambda body: body["detail"]),
        ("/v1/session-token", lambda body: body["error"]),
        ("/web_call/get_token", lambda body: body["message"]),
        ("/api/chat/tokens", lambda body: body["errors"][0]["message"]),
    ],
)
def test_a_head_over_the_limit_is_431_in_the_path_format(server, path, error_of):
    _, bare = _head(path, server, 0)
    at_limit, counted = _head(path, server, HEAD_LIMIT - bare)
    assert counted == HEAD_LIMIT
    with _connect(server) as sock:
        sock.sendall(at_limit)
        status, _, _ = _response(sock)
        assert status != 431  # served (401 or 405: no credentials, wrong method)
    over, counted = _head(path, server, HEAD_LIMIT - bare + 1)
    assert counted == HEAD_LIMIT + 1
    with _connect(server) as sock:
        sock.sendall(over)
        status, headers, body = _response(sock)
    assert status == 431
    assert headers["content-type"] == "application/json"
    assert error_of(json.loads(body)) == "Request header fields too large."


def _ws_handshake(port, path="/api/relay/ws") -> socket.socket:
    sock = _connect(port)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    status, _, _ = _response(sock)
    assert status == 101
    return sock


def _frame_head(length: int) -> bytes:
    """A masked text frame's header announcing `length` payload bytes, and its mask."""
    return b"\x81\xff" + struct.pack("!Q", length) + b"\x00\x00\x00\x00"


def _close_code(sock, seconds: float) -> int | None:
    sock.settimeout(seconds)
    try:
        data = sock.recv(65536)
    except (TimeoutError, ConnectionResetError):
        return None
    if len(data) >= 4 and data[0] == 0x88:
        return struct.unpack("!H", data[2:4])[0]
    return None


def test_a_websocket_frame_over_the_cap_is_refused_from_its_header(server):
    sock = _ws_handshake(server)
    # Announce 15 MiB and send only a little: the server must not wait for (and buffer) the
    # rest before refusing.
    sock.sendall(_frame_head(15 * 1024 * 1024) + b"{" * 1000)
    assert _close_code(sock, 2) == 1009
    sock.close()


def test_a_websocket_frame_at_the_cap_is_read_by_the_application(server):
    sock = _ws_handshake(server)
    sock.sendall(_frame_head(FRAME_CAP) + b" " * FRAME_CAP)
    sock.settimeout(5)
    data = sock.recv(65536)
    # The relay parsed it (a JSON-RPC parse error answer), and the socket is still open.
    assert data[0] == 0x81
    assert json.loads(data[2:] if data[1] < 126 else data[4:])["error"]["code"] == -32700
    sock.close()


def test_connections_over_the_cap_get_503_in_the_path_format(capped_server):
    server = capped_server
    held = [_connect(server) for _ in range(MAX_CONNECTIONS - 1)]
    try:
        time.sleep(0.2)
        with _connect(server) as sock:  # the Nth connection is served
            sock.sendall(b"GET /v1/nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, _, body = _response(sock)
            assert (status, json.loads(body)) == (404, {"error": "Not found."})
        held.append(_connect(server))
        time.sleep(0.2)
        with _connect(server) as sock:  # the N+1th is not
            sock.sendall(b"GET /v1/nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, headers, body = _response(sock)
        assert status == 503
        assert headers["retry-after"] == "1"
        assert json.loads(body) == {"error": "The server is at its connection limit."}
        with _connect(server) as sock:  # a WebSocket handshake too
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall(
                (
                    "GET /api/relay/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            status, _, body = _response(sock)
        assert status == 503
    finally:
        for sock in held:
            sock.close()


def _post(path: str, body: bytes, *, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode() + body


def test_bodies_received_at_once_are_capped(capped_server):
    server = capped_server
    slow = _connect(server)
    try:
        slow.sendall(_post("/api/chat/tokens", b"{", length=1000))  # one body arriving slowly
        time.sleep(0.2)
        with _connect(server) as sock:  # the Nth body is received
            sock.sendall(_post("/web_call/get_token", b"{}"))
            status, _, body = _response(sock)
            assert status == 401
        second = _connect(server)
        second.sendall(_post("/api/chat/tokens", b"{", length=1000))
        time.sleep(0.2)
        with _connect(server) as sock:  # the N+1th is refused before it is read
            sock.sendall(_post("/web_call/get_token", b"{}"))
            status, _, body = _response(sock)
        assert status == 503
        assert json.loads(body)["message"] == "The server is receiving too many bodies."
        with _connect(server) as sock:  # a request without a body is still served
            sock.sendall(b"GET /v1/nothing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _response(sock)[0] == 404
        second.close()
    finally:
        slow.close()
