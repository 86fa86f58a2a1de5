"""Two server processes behind one database and one Redis, as a load balancer would spread
clients: a message published on one reaches subscribers on the other, and revoking a token
through one closes its socket on the other within a second.

Cross-process fan-out needs the Redis channel layer, so these run when REDIS_URL is set (the
PostgreSQL + Redis pass of .ci/run); the in-memory layer cannot span processes.
"""

import asyncio
import os
import time
import uuid

import httpx
import pytest

from tests.chat.relay_client import Relay
from tokens import live

pytestmark = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs REDIS_URL: fan-out across processes"
)


@pytest.fixture(scope="module")
def two(chat_server):
    with chat_server.second_process() as (_, port2):
        yield chat_server, f"ws://127.0.0.1:{port2}/api/relay/ws"


async def test_publish_on_one_process_reaches_the_other(two):
    server, relay2 = two
    name = f"cross-{uuid.uuid4().hex[:8]}"
    async with Relay.open(server.relay) as a, Relay.open(relay2) as b:
        await a.connect(server.mint("alice", [name]))
        await b.connect(server.mint("bob", [name]))
        await a.result("chat.subscribe", {"channels": [{"name": name}]})
        await b.result("chat.subscribe", {"channels": [{"name": name}]})
        assert (await a.event("chat.member.joined"))["member"]["id"] in {"alice", "bob"}
        await b.result("chat.publish", {"channel": name, "content": "from process 2"})
        event = await a.event("chat.channel.message")
        assert event["message"]["content"] == "from process 2"
        assert event["message"]["member"]["id"] == "bob"
        # The Fabric HTTP path on process 1 fans out to a v3 socket on process 2 too.
        token = server.mint("carol", [name])
        address = httpx.get(
            server.base + "/api/fabric/addresses",
            params={"name": name},
            headers={"Authorization": f"Bearer {token}"},
        ).json()["data"][0]
        sent = httpx.post(
            server.base + "/api/fabric/messages",
            json={"conversation_id": address["id"], "text": "over http"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert sent.status_code == 201, sent.text
        contents = [(await b.event("chat.channel.message"))["message"]["content"] for _ in "12"]
        assert contents == ["from process 2", "over http"]


async def test_revoke_through_one_process_closes_the_socket_on_the_other(two):
    server, relay2 = two
    token = server.mint("alice", [f"cross-{uuid.uuid4().hex[:8]}"])
    async with Relay.open(relay2) as relay:
        await relay.connect(token)
        started = time.monotonic()
        await asyncio.to_thread(server.revoke, token)  # through process 1's API
        assert await relay.closed(timeout=1.0) == live.CLOSE_REVOKED
        assert time.monotonic() - started < 1.0
