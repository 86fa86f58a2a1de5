"""Redis faults under the rate limits, through real servers whose counters' Redis link goes
through a TCP proxy (tests.faultproxy) to the real Redis: limits fail OPEN for callers that
authenticate (served, uncounted) and CLOSED for failed authentication (refused, and the
address refused by that process before any key lookup), and counting resumes by itself once
Redis is back.

Only the counters' link (ROOMKEY_LIMITS_REDIS_URL) goes through the proxy: without its channel
layer a WebSocket cannot run at all, which is the layer's own fault behaviour, not the limits'.
The HTTP paths measured here use no channel layer."""

import asyncio
import os
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from websockets.exceptions import ConnectionClosed

from limits.errors import CLOSE_RATE_LIMITED
from tests.chat.relay_client import Relay
from tests.faultproxy import FaultProxy
from tests.limits.served import new_address, serve_limited

pytestmark = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs REDIS_URL: the limits' Redis faults"
)

BODY = {"ttl": 1, "channels": ["general"]}
WRONG = "rk_000000000000_" + "z" * 43


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    parts = urlsplit(os.environ["REDIS_URL"])
    with FaultProxy(parts.hostname, parts.port or 6379) as proxy:
        netloc = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
        url = urlunsplit(parts._replace(netloc=f"{netloc}:{proxy.port}"))
        for limited in serve_limited(
            tmp_path_factory, keys=20, env={"ROOMKEY_LIMITS_REDIS_URL": url}
        ):
            yield limited, proxy


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


async def _socket_code(limited, address, token, server) -> int | None:
    ws = await limited.ws("/api/relay/ws", address, server=server)
    relay = Relay(ws)
    try:
        await relay.connect(token)
        async with asyncio.timeout(2):
            while True:
                await ws.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


@pytest.mark.parametrize("fault", ["refuse", "blackhole"])
async def test_redis_down_fails_open_for_callers_and_closed_for_failed_auth(faulty, fault):
    limited, proxy = faulty
    key = limited.key()
    counted = limited.http(new_address(), key=key).post("/api/chat/tokens", json=BODY)
    assert counted.headers["RateLimit-Remaining"] == "2"
    getattr(proxy, fault)()
    try:
        # Open: past the key's limit of 3, each answered at once, uncounted.
        address = new_address()
        for i in range(5):
            client = limited.http(address, key=key, server=i)
            answer, took = await asyncio.to_thread(
                timed, lambda c=client: c.post("/api/chat/tokens", json=BODY)
            )
            assert answer.status_code == 200, answer.text
            assert "RateLimit-Limit" not in answer.headers
            assert took < 1.0
        # Closed: a failed authentication is refused, then the address is, by that process,
        # a valid key included; other addresses keep working.
        failing = new_address()
        for server in range(len(limited.bases)):
            refused = limited.http(failing, key=WRONG, server=server).post(
                "/api/chat/tokens", json=BODY
            )
            assert refused.status_code == 429
            assert int(refused.headers["Retry-After"]) == 60
            assert "Too many failed authentications" in refused.json()["errors"][0]["message"]
            again = limited.http(failing, key=key, server=server).get("/api/v1/addresses")
            assert again.status_code == 429
        assert limited.http(new_address(), key=key).get("/api/v1/addresses").status_code == 200
        # Sockets alike: a refused token, then the address's handshakes.
        socket_address = new_address()
        code = await _socket_code(limited, socket_address, "not-a-token", 0)
        assert code == 4001
        ws = await limited.ws("/api/relay/ws", socket_address, server=0)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(2):
                await ws.recv()
        assert closed.value.rcvd.code == CLOSE_RATE_LIMITED
    finally:
        proxy.heal()
    # Counting resumes by itself (Redis is tried again after REDIS_RETRY_SECONDS).
    deadline = time.monotonic() + 5
    while True:
        answer = limited.http(new_address(), key=limited.key()).post("/api/chat/tokens", json=BODY)
        if "RateLimit-Remaining" in answer.headers:
            break
        assert time.monotonic() < deadline, "the limits did not come back with Redis"
        await asyncio.sleep(0.2)
    assert answer.headers["RateLimit-Remaining"] == "2"
