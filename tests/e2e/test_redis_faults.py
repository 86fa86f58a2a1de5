"""Redis faults, injected with tests/faultproxy.py between two server processes and the real
Redis (their REDIS_URL points at the proxy): refused connections, connections cut, and a
blackhole (connections stay up, nothing passes).

During a fault:
- chat and voice tokens are issued, introspected and revoked over HTTP as usual (nothing on those
  paths needs Redis; a revocation's broadcast gives up after one Redis timeout);
- a message sent over HTTP is stored (live fan-out may be lost; the history has it);
- open relay and voice sockets close with 1013 within OPEN_SOCKETS_CLOSE_WITHIN seconds, and
  the voice sessions they carried end;
- a new socket is closed with 1011/1013, and a voice token tried then is not used up.
After the fault: new sockets work and receive fan-out (the recovery time is measured and
printed), a revocation closes a socket within a second again, the voice token tried during the
fault connects, and no token revoked during the fault validates.

A cut is over as soon as it happens (new connections are forwarded): the sockets it cuts close,
and everything afterwards is the "after" half.
"""

import asyncio
import os
import time
import uuid
from urllib.parse import urlsplit

import pytest
import websockets

from tests.faultproxy import FaultProxy
from tests.live_cluster import call, close_code, cluster, needs_redis, next_event
from tokens import live

pytestmark = needs_redis

RECONNECT = {live.CLOSE_SERVER_ERROR, live.CLOSE_TRY_AGAIN}
# One Redis timeout (ROOMKEY_REDIS_TIMEOUT_SECONDS, 1 s) and the time to close.
OPEN_SOCKETS_CLOSE_WITHIN = 2.0
HTTP_WITHIN = 2.0  # a request whose after-commit broadcast meets the fault: one Redis timeout


@pytest.fixture(scope="module")
def faulty(chat_server):
    target = urlsplit(os.environ["REDIS_URL"])
    with FaultProxy(target.hostname, target.port or 6379) as proxy:
        redis_url = target._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
        with cluster(chat_server, redis_url=redis_url) as servers:
            yield servers, proxy


async def _timed(fn, *args, **kwargs):
    started = time.monotonic()
    result = await asyncio.to_thread(fn, *args, **kwargs)
    return result, time.monotonic() - started


async def _new_relay_close_code(servers, token, *, on) -> int | None:
    """Open a relay socket and authenticate: the close code it gets (None if it stays open)."""
    try:
        async with websockets.connect(servers.relay_url(on), open_timeout=5) as ws:
            connect = {"version": {"major": 3}, "authentication": {"jwt_token": token}}
            try:
                reply = await call(ws, "signalwire.connect", connect, timeout=5)
            except websockets.ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else None
            if "result" not in reply:
                return -1  # refused as a bad token
            return await close_code(ws, within=3)
    except TimeoutError:
        return None


async def _new_voice_close_code(servers, token, *, on) -> int | None:
    try:
        async with websockets.connect(servers.voice_url(token, on), open_timeout=5) as ws:
            return await close_code(ws, within=3)
    except TimeoutError:
        return None


async def _recovered(servers, channel, conversation, *, on) -> "websockets.ClientConnection":
    """Retry until a new relay socket authenticates, subscribes and receives a message sent
    over HTTP through the other process; that socket."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        token = servers.chat_token(f"back-{uuid.uuid4().hex[:6]}", [channel])
        try:
            ws = await servers.relay(token, on=on, channels=[channel])
        except (websockets.ConnectionClosed, AssertionError, TimeoutError):
            await asyncio.sleep(0.05)
            continue
        for _ in range(3):  # a message may be lost while the layer reconnects
            text = f"after {uuid.uuid4().hex[:6]}"
            await asyncio.to_thread(servers.post_message, conversation, text, on=1 - on)
            try:
                event = await next_event(ws, "chat.channel.message", timeout=1)
            except (TimeoutError, websockets.ConnectionClosed):
                continue
            if event["message"]["content"] == text:
                ws.recovered_token = token
                return ws
        await ws.close()
    raise AssertionError("no socket received fan-out within 10 s of the fault ending")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", ["refuse", "cut", "blackhole"])
async def test_a_redis_fault(faulty, fault):
    servers, proxy = faulty
    channel = f"fault-{fault}-{uuid.uuid4().hex[:6]}"
    conversation = await asyncio.to_thread(servers.address_id, channel)
    relay_tokens = [servers.chat_token(f"open-{i}", [channel], on=i) for i in range(2)]
    voice_tokens = [servers.voice_token(on=i) for i in range(2)]
    relays = [await servers.relay(t, on=i, channels=[channel]) for i, t in enumerate(relay_tokens)]
    voices = [await servers.voice(t, on=i) for i, t in enumerate(voice_tokens)]
    spare_voice = servers.voice_token()  # tried during the fault, used after it
    doomed = servers.chat_token("doomed", [channel])  # revoked during the fault

    getattr(proxy, fault)()
    started = time.monotonic()
    try:
        # Open sockets lose the layer: they close so clients reconnect.
        codes = await asyncio.gather(
            *(close_code(ws, within=OPEN_SOCKETS_CLOSE_WITHIN) for ws in relays + voices)
        )
        assert set(codes) <= {live.CLOSE_TRY_AGAIN}, codes
        report = {"open sockets closed": time.monotonic() - started}

        # HTTP does not need Redis.
        issued, took = await _timed(servers.chat_token, "during", [channel], on=1)
        assert took < HTTP_WITHIN
        assert servers.introspect(issued, on=0)["active"] is True
        _, took = await _timed(servers.revoke, doomed, on=1)
        assert took < HTTP_WITHIN
        report["revocation"] = took
        assert servers.introspect(doomed, on=0) == {"active": False}
        sent, took = await _timed(servers.post_message, conversation, f"during {fault}", on=0)
        assert took < HTTP_WITHIN and sent["text"] == f"during {fault}"
        report["message sent"] = took
        assert servers.voice_token(on=1)

        if fault != "cut":
            # New sockets are refused with a code that says "reconnect", and a voice token
            # tried now is not used up.
            opened = time.monotonic()
            relay_code = await _new_relay_close_code(servers, issued, on=0)
            assert relay_code in RECONNECT, relay_code
            report["new relay socket refused"] = time.monotonic() - opened
            opened = time.monotonic()
            voice_code = await _new_voice_close_code(servers, spare_voice, on=1)
            assert voice_code in RECONNECT, voice_code
            report["new voice socket refused"] = time.monotonic() - opened
            assert servers.introspect(spare_voice)["active"] is True
    finally:
        proxy.heal()
    healed = time.monotonic()

    # Back: a new socket authenticates and hears fan-out (the time it took is the recovery).
    ws = await _recovered(servers, channel, conversation, on=0)
    report["recovery (new socket + fan-out after the fault ended)"] = time.monotonic() - healed
    print(f"\nRedis {fault}:", ", ".join(f"{k} {v:.2f} s" for k, v in report.items()))
    assert f"during {fault}" in await asyncio.to_thread(servers.history, conversation)

    # Revocation closes sockets within a second again, on either process.
    started = time.monotonic()
    await asyncio.to_thread(servers.revoke, ws.recovered_token, on=1)
    assert await close_code(ws, within=1.0) == live.CLOSE_REVOKED
    assert time.monotonic() - started < 1.0
    voice = await servers.voice(spare_voice, on=1)  # tried during the fault, still usable
    started = time.monotonic()
    await asyncio.to_thread(servers.revoke, spare_voice, on=0)
    assert await close_code(voice, within=1.0) == live.CLOSE_REVOKED
    assert time.monotonic() - started < 1.0

    # No revoked token validates: the one revoked during the fault is refused.
    assert await _new_relay_close_code(servers, doomed, on=0) == -1
    # The voice sessions whose sockets the fault closed have ended (their tokens with them).
    for token in voice_tokens:
        assert servers.introspect(token) == {"active": False}
        assert await _new_voice_close_code(servers, token, on=0) == live.CLOSE_INVALID_TOKEN
