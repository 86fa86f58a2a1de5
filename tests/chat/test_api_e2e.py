"""The chat API end to end: uvicorn serving the app as `make run` does, real HTTP and a real
relay WebSocket. A message created through `POST /api/v1/conversations/{id}/messages` reaches a
relay subscriber exactly like a client's publish — through Redis into another server process
when REDIS_URL is set — and never reaches another project's channel of the same name."""

import asyncio
import json
import os
import subprocess
from contextlib import ExitStack

import httpx
import pytest
import websockets

from tests.servers import MANAGE, ROOT, prepare_database, server_env, uvicorn

CHANNEL = "general"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(base URLs, demo project, other project): two servers sharing Redis when REDIS_URL is
    set (the API on the first, subscribers on the last), else one."""
    db = tmp_path_factory.mktemp("chat-api") / "db.sqlite3"
    env = server_env(f"sqlite:///{db}")
    demo = prepare_database(env)
    other = json.loads(
        subprocess.run(
            [*MANAGE, "createproject", "Other", "--json"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
    )
    count = 2 if os.environ.get("REDIS_URL") else 1
    with ExitStack() as stack:
        bases = [stack.enter_context(uvicorn(env))[0] for _ in range(count)]
        yield bases, demo, other


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


class Relay:
    """A relay client speaking Chat.Client's JSON-RPC."""

    def __init__(self, ws):
        self.ws = ws
        self.events = asyncio.Queue()
        self.replies = {}
        self.next_id = 0
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, base, token):
        ws = await websockets.connect(base.replace("http", "ws", 1) + "/api/relay/ws")
        relay = cls(ws)
        await relay.call(
            "signalwire.connect",
            {
                "version": {"major": 3, "minor": 0, "revision": 0},
                "event_acks": True,
                "agent": "roomkey-tests",
                "authentication": {"jwt_token": token},
            },
        )
        return relay

    async def _read(self):
        async for raw in self.ws:
            frame = json.loads(raw)
            if frame.get("method") == "signalwire.event":
                await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": frame["id"], "result": {}}))
                await self.events.put(frame["params"])
            elif frame.get("id") in self.replies:
                self.replies.pop(frame["id"]).set_result(frame)

    async def call(self, method, params):
        self.next_id += 1
        ident = str(self.next_id)
        self.replies[ident] = asyncio.get_running_loop().create_future()
        await self.ws.send(
            json.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        )
        reply = await asyncio.wait_for(self.replies[ident], 5)
        assert "error" not in reply, reply
        return reply["result"]

    async def message(self, timeout=5):
        """The next chat.channel.message event's params (other events are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if event["event_type"] == "chat.channel.message":
                    return event["params"]

    async def close(self):
        self.reader.cancel()
        await self.ws.close()


async def subscriber(base, api_key, member_id):
    async with httpx.AsyncClient(base_url=base, headers=bearer(api_key)) as client:
        minted = await client.post(
            "/api/chat/tokens", json={"ttl": 5, "channels": [CHANNEL], "member_id": member_id}
        )
        assert minted.status_code == 200, minted.text
    relay = await Relay.connect(base, minted.json()["token"])
    result = await relay.call("chat.subscribe", {"channels": [{"name": CHANNEL}]})
    assert str(result.get("code", "200")).startswith("2"), result
    return relay


async def test_api_message_reaches_relay_subscribers(served):
    bases, demo, other = served
    api_base, relay_base = bases[0], bases[-1]
    alice = await subscriber(relay_base, demo["api_key"], "alice")
    stranger = await subscriber(relay_base, other["api_key"], "stranger")
    try:
        async with httpx.AsyncClient(base_url=api_base, headers=bearer(demo["api_key"])) as api:
            found = (await api.get("/api/v1/addresses", params={"name": CHANNEL})).json()
            [address] = found["results"]  # made by the first subscribe
            sent = await api.post(
                f"/api/v1/conversations/{address['id']}/messages",
                json={"text": "from the backend", "user_id": "support-bot", "metadata": {"n": 1}},
            )
            assert sent.status_code == 201, sent.text
        event = await alice.message()
        assert event["channel"] == CHANNEL
        message = event["message"]
        assert message["id"] == sent.json()["id"]
        assert message["content"] == "from the backend"
        assert message["meta"] == {"n": 1}
        assert message["member"]["id"] == "support-bot"
        # Project "Other" has a "general" channel too; it hears nothing of the demo's.
        with pytest.raises(TimeoutError):
            await stranger.message(timeout=0.5)
        # The API's history and the relay's history are the same rows.
        history = await alice.call("chat.messages.get", {"channel": CHANNEL})
        assert sent.json()["id"] in [m["id"] for m in history["messages"]]
    finally:
        await alice.close()
        await stranger.close()


async def test_other_project_cannot_post_or_read(served):
    bases, demo, other = served
    async with httpx.AsyncClient(base_url=bases[0]) as client:
        made = await client.post(
            "/api/v1/addresses", json={"name": "private"}, headers=bearer(demo["api_key"])
        )
        assert made.status_code == 201, made.text
        url = f"/api/v1/conversations/{made.json()['id']}/messages"
        posted = await client.post(url, json={"text": "x"}, headers=bearer(other["api_key"]))
        assert posted.status_code == 404 and posted.json() == {"detail": "Not found."}
        read = await client.get(url, headers=bearer(other["api_key"]))
        assert read.status_code == 404
        mine = await client.get(url, headers=bearer(demo["api_key"]))
        assert mine.status_code == 200 and mine.json()["results"] == []
