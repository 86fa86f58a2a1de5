"""Idle sockets on two server processes sharing Redis stay open until their token is revoked,
whatever the Redis client's own timeouts: relay sockets (chat tokens) and voice sockets.

The soak opens ROOMKEY_SOAK_SOCKETS (50) sockets of each kind, spread over both processes,
keeps them idle ROOMKEY_SOAK_SECONDS (60), then revokes each through the API of one process
and expects it closed with 4003 within a second.
"""

import asyncio
import os
import time
import uuid

import pytest

from tests.live_cluster import close_code, cluster, is_open, needs_redis, next_event
from tokens import live

pytestmark = needs_redis

SOAK_SECONDS = float(os.environ.get("ROOMKEY_SOAK_SECONDS", "60"))
SOAK_SOCKETS = int(os.environ.get("ROOMKEY_SOAK_SOCKETS", "50"))


@pytest.fixture(scope="module")
def two(chat_server):
    with cluster(chat_server) as servers:
        yield servers


async def _revoke_and_expect_4003(servers, ws, token) -> None:
    started = time.monotonic()
    await asyncio.to_thread(servers.revoke, token, on=0)
    assert await close_code(ws, within=1.0) == live.CLOSE_REVOKED
    assert time.monotonic() - started < 1.0


async def test_idle_sockets_outlive_the_layers_blocking_read(two):
    # channels_redis waits for messages with a blocking Redis read of a few seconds; an idle
    # socket must survive several of them on both processes (with redis-py 8's default socket
    # timeout every one of them failed, and the sockets with it).
    name = f"idle-{uuid.uuid4().hex[:8]}"
    conversation = await asyncio.to_thread(two.address_id, name)
    relay_tokens = [two.chat_token(f"idle-{i}", [name]) for i in range(2)]
    voice_tokens = [two.voice_token() for _ in range(2)]
    relays = [await two.relay(t, on=i, channels=[name]) for i, t in enumerate(relay_tokens)]
    voices = [await two.voice(t, on=i) for i, t in enumerate(voice_tokens)]
    await asyncio.sleep(16)
    for ws in relays + voices:
        assert await is_open(ws), ws.close_code
    # Still in their groups: a message sent through one process reaches both.
    await asyncio.to_thread(two.post_message, conversation, "still here", on=1)
    for ws in relays:
        assert (await next_event(ws, "chat.channel.message"))["message"]["content"] == "still here"
    for ws, token in zip(relays + voices, relay_tokens + voice_tokens, strict=True):
        await _revoke_and_expect_4003(two, ws, token)


@pytest.mark.timeout(SOAK_SECONDS + 150)
async def test_soak_idle_sockets_on_both_processes_then_revoke_each(two):
    name = f"soak-{uuid.uuid4().hex[:8]}"
    conversation = await asyncio.to_thread(two.address_id, name)
    relay_tokens = [two.chat_token(f"soak-{i}", [name]) for i in range(SOAK_SOCKETS)]
    voice_tokens = [two.voice_token() for _ in range(SOAK_SOCKETS)]
    # Fabric (v4) clients that only listen, and voice sessions, alternating between processes.
    relays = await asyncio.gather(
        *(two.relay(t, on=i % 2, major=4) for i, t in enumerate(relay_tokens))
    )
    voices = await asyncio.gather(*(two.voice(t, on=i % 2) for i, t in enumerate(voice_tokens)))
    sockets = list(zip([*relays, *voices], [*relay_tokens, *voice_tokens], strict=True))

    await asyncio.sleep(SOAK_SECONDS)
    still_open = await asyncio.gather(*(is_open(ws) for ws, _ in sockets))
    closed = [ws.close_code for (ws, _), ok in zip(sockets, still_open, strict=True) if not ok]
    assert not closed, f"{len(closed)} of {len(sockets)} sockets closed while idle: {closed}"
    # Still in their channel's group, on both processes.
    await asyncio.to_thread(two.post_message, conversation, "after the soak", on=1)
    events = await asyncio.gather(
        *(next_event(ws, "conversation.message", timeout=5) for ws in relays)
    )
    assert {e["text"] for e in events} == {"after the soak"}

    for ws, token in sockets:
        await _revoke_and_expect_4003(two, ws, token)
