"""The fault proxy that fault tests put between Roomkey and PostgreSQL or Redis
(tests/faultproxy.py), checked against an echo server of its own: forwarding, refuse, cut,
blackhole and heal behave as the fault tests rely on."""

import socket
import socketserver
import threading

import pytest

from tests.faultproxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def echo_port():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _connect(port) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=2)


def _echo(sock, payload=b"ping") -> bytes:
    sock.sendall(payload)
    return sock.recv(4096)


def test_forwards_both_ways(echo_port):
    with FaultProxy("127.0.0.1", echo_port) as proxy, _connect(proxy.port) as sock:
        assert _echo(sock) == b"ping"
        assert proxy.accepted == 1


def test_refuse_resets_open_connections_and_refuses_new_ones_until_healed(echo_port):
    with FaultProxy("127.0.0.1", echo_port) as proxy:
        sock = _connect(proxy.port)
        assert _echo(sock) == b"ping"
        proxy.refuse()
        with pytest.raises(OSError):
            for _ in range(3):  # the reset may surface on the send or the recv
                if not _echo(sock):
                    raise ConnectionResetError
        sock.close()
        with pytest.raises(ConnectionRefusedError):
            _connect(proxy.port)
        proxy.heal()
        with _connect(proxy.port) as again:
            assert _echo(again) == b"ping"


def test_cut_resets_open_connections_but_accepts_new_ones(echo_port):
    with FaultProxy("127.0.0.1", echo_port) as proxy:
        sock = _connect(proxy.port)
        assert _echo(sock) == b"ping"
        proxy.cut()
        with pytest.raises(OSError):
            for _ in range(3):
                if not _echo(sock):
                    raise ConnectionResetError
        sock.close()
        with _connect(proxy.port) as again:
            assert _echo(again) == b"ping"


def test_blackhole_passes_nothing_until_healed(echo_port):
    with FaultProxy("127.0.0.1", echo_port) as proxy, _connect(proxy.port) as sock:
        assert _echo(sock) == b"ping"
        proxy.blackhole()
        sock.settimeout(0.5)
        sock.sendall(b"lost?")
        with pytest.raises(TimeoutError):
            sock.recv(4096)
        with _connect(proxy.port) as new:  # a new connection is accepted, and hangs too
            new.settimeout(0.5)
            new.sendall(b"x")
            with pytest.raises(TimeoutError):
                new.recv(4096)
        proxy.heal()
        sock.settimeout(2)
        assert sock.recv(4096) == b"lost?"  # held, as TCP retransmits once the path is back
