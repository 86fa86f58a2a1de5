"""Two served Roomkey processes on one database and one Redis, as a load balancer spreads
clients, for the live-socket tests (idle sockets and the soak, Redis faults): tokens minted,
introspected and revoked over HTTP, relay and voice sockets opened with the `websockets` client
on either process.

Cross-process fan-out needs the Redis channel layer, so these tests run when REDIS_URL is set
(the PostgreSQL + Redis pass of .ci/run); the in-memory layer cannot span processes.
"""

import asyncio
import json
import os
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx
import pytest
import websockets

from tests.servers import uvicorn

needs_redis = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs REDIS_URL: sockets across processes"
)


@dataclass
class Cluster:
    bases: list[str]
    ports: list[int]
    env: dict
    api_key: str
    agent_id: str

    def __post_init__(self):
        self.http = httpx.Client(
            headers={"Authorization": f"Bearer {self.api_key}"}, timeout=httpx.Timeout(10.0)
        )

    # --- Over HTTP ------------------------------------------------------------------------

    def chat_token(self, member_id: str, channels: list[str], *, on=0, ttl=60) -> str:
        response = self.http.post(
            self.bases[on] + "/api/chat/tokens",
            json={"ttl": ttl, "channels": channels, "member_id": member_id},
        )
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def voice_token(self, *, on=0) -> str:
        response = self.http.post(
            self.bases[on] + "/v1/session-token", json={"agent_id": self.agent_id}
        )
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def revoke(self, token: str, *, on=0) -> None:
        response = self.http.post(self.bases[on] + "/api/v1/tokens/revoke", json={"token": token})
        assert response.status_code == 200, response.text

    def introspect(self, token: str, *, on=0) -> dict:
        response = self.http.post(
            self.bases[on] + "/api/v1/tokens/introspect", json={"token": token}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def address_id(self, name: str, *, on=0) -> str:
        """The id of the channel `name`'s address (its conversation), created if need be."""
        found = self.http.get(self.bases[on] + "/api/v1/addresses", params={"name": name})
        assert found.status_code == 200, found.text
        if found.json()["results"]:
            return found.json()["results"][0]["id"]
        made = self.http.post(self.bases[on] + "/api/v1/addresses", json={"name": name})
        assert made.status_code == 201, made.text
        return made.json()["id"]

    def post_message(self, conversation_id: str, text: str, *, on=0) -> dict:
        """Send a message through the chat API; the stored message."""
        response = self.http.post(
            f"{self.bases[on]}/api/v1/conversations/{conversation_id}/messages",
            json={"text": text, "user_id": "backend"},
        )
        assert response.status_code == 201, response.text
        return response.json()

    def history(self, conversation_id: str, *, on=0) -> list[str]:
        response = self.http.get(
            f"{self.bases[on]}/api/v1/conversations/{conversation_id}/messages",
            params={"page_size": 100},
        )
        assert response.status_code == 200, response.text
        return [m["text"] for m in response.json()["results"]]

    # --- Sockets --------------------------------------------------------------------------

    def relay_url(self, on=0) -> str:
        return f"ws://127.0.0.1:{self.ports[on]}/api/relay/ws"

    def voice_url(self, token: str, on=0) -> str:
        return f"ws://127.0.0.1:{self.ports[on]}/v1/connection?token={token}"

    async def relay(
        self, token: str, *, on=0, channels=(), major=3
    ) -> "websockets.ClientConnection":
        """An authenticated relay socket: v3 (Chat.Client) subscribed to `channels`, or v4
        (Fabric), which hears every channel its token can read."""
        ws = await websockets.connect(self.relay_url(on), open_timeout=5)
        reply = await call(
            ws,
            "signalwire.connect",
            {
                "version": {"major": major, "minor": 0, "revision": 0},
                "authentication": {"jwt_token": token},
            },
        )
        assert "result" in reply, reply
        if channels:
            reply = await call(ws, "chat.subscribe", {"channels": [{"name": n} for n in channels]})
            assert reply.get("result", {}).get("code") == "200", reply
        return ws

    async def voice(self, token: str, *, on=0) -> "websockets.ClientConnection":
        """A voice socket whose session started."""
        ws = await websockets.connect(self.voice_url(token, on), open_timeout=5)
        event = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert event["type"] == "session.started", event
        return ws


async def call(ws, method: str, params: dict, *, rid: str | None = None, timeout=5.0) -> dict:
    """Send a JSON-RPC request on a relay socket; its reply (events before it are acked)."""
    rid = rid or os.urandom(6).hex()
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("method") == "signalwire.event":
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": frame["id"], "result": {}}))
                continue
            if frame.get("id") == rid:
                return frame


async def next_event(ws, event_type: str, *, timeout=2.0) -> dict:
    """The next pushed relay event of this type (acked, as real clients do)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("method") != "signalwire.event":
                continue
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": frame["id"], "result": {}}))
            if frame["params"]["event_type"] == event_type:
                return frame["params"]["params"]


async def close_code(ws, *, within: float) -> int | None:
    """Read until the server closes the socket, at most `within` seconds: its close code
    (None when the connection dropped without a close frame). Times out if still open."""
    try:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def is_open(ws) -> bool:
    """Does the socket still answer a ping?"""
    try:
        await asyncio.wait_for(await ws.ping(), 2)
    except (websockets.ConnectionClosed, TimeoutError):
        return False
    return True


@contextmanager
def cluster(chat_server, *, redis_url: str | None = None):
    """Two more uvicorn processes on the served chat database (tests/chat_served.py, with the
    demo project and agent), sharing `redis_url` (default: the test run's REDIS_URL) as their
    channel layer. The rate limits' counters stay on the run's own Redis: a fault here is the
    channel layer's, and tests/limits tests what the limits do when their Redis fails."""
    env = dict(chat_server.env)
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
        env["ROOMKEY_LIMITS_REDIS_URL"] = os.environ.get("REDIS_URL", "")
    with ExitStack() as stack:
        served = [stack.enter_context(uvicorn(env)) for _ in range(2)]
        yield Cluster(
            bases=[base for base, _ in served],
            ports=[port for _, port in served],
            env=env,
            api_key=chat_server.api_key,
            agent_id=chat_server.agent_id,
        )
