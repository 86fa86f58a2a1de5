"""The chat API end to end: uvicorn serving the app as `make run` does, real HTTP and a real
relay WebSocket. A message created through `POST /api/v1/conversations/{id}/messages` reaches a
relay subscriber exactly like a client's publish — through Redis into another server process
when REDIS_URL is set — and never reaches another project's channel of the same name."""

import os
import uuid
from contextlib import nullcontext

import httpx
import pytest

from tests.chat.relay_client import Relay


@pytest.fixture(scope="module")
def served(chat_server):
    """(server, relay URL of the subscribers): a second process sharing Redis when REDIS_URL
    is set (the API on the first, subscribers on the second), else the same one."""
    second = chat_server.second_process() if os.environ.get("REDIS_URL") else nullcontext(None)
    with second as other:
        port = other[1] if other else chat_server.port
        yield chat_server, f"ws://127.0.0.1:{port}/api/relay/ws"


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


async def test_api_message_reaches_relay_subscribers(served):
    server, relay_url = served
    channel = f"api-{uuid.uuid4().hex[:8]}"
    async with Relay.open(relay_url) as alice, Relay.open(relay_url) as stranger:
        await alice.connect(server.mint("alice", [channel]))
        await stranger.connect(server.mint("stranger", [channel], other=True))
        for relay in (alice, stranger):
            result = await relay.result("chat.subscribe", {"channels": [{"name": channel}]})
            assert result["code"] == "200", result
        async with httpx.AsyncClient(base_url=server.base, headers=bearer(server.api_key)) as api:
            found = (await api.get("/api/v1/addresses", params={"name": channel})).json()
            [address] = found["results"]  # made by the first subscribe
            sent = await api.post(
                f"/api/v1/conversations/{address['id']}/messages",
                json={"text": "from the backend", "user_id": "support-bot", "metadata": {"n": 1}},
            )
            assert sent.status_code == 201, sent.text
        event = await alice.event("chat.channel.message")
        assert event["channel"] == channel
        message = event["message"]
        assert message["id"] == sent.json()["id"]
        assert message["content"] == "from the backend"
        assert message["meta"] == {"n": 1}
        assert message["member"]["id"] == "support-bot"
        # Project "Other" has a channel of the same name too; it hears nothing of the demo's.
        await stranger.event("chat.member.joined")
        with pytest.raises(TimeoutError):
            await stranger.event("chat.channel.message", timeout=0.5)
        # The API's history and the relay's history are the same rows.
        history = await alice.result("chat.messages.get", {"channel": channel})
        assert sent.json()["id"] in [m["id"] for m in history["messages"]]


async def test_other_project_cannot_post_or_read(served):
    server, _ = served
    name = f"private-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=server.base) as client:
        made = await client.post(
            "/api/v1/addresses", json={"name": name}, headers=bearer(server.api_key)
        )
        assert made.status_code == 201, made.text
        url = f"/api/v1/conversations/{made.json()['id']}/messages"
        other = bearer(server.other_api_key)
        posted = await client.post(url, json={"text": "x"}, headers=other)
        assert posted.status_code == 404 and posted.json() == {"detail": "Not found."}
        for path in (url, url.replace("/messages", "/members"), url.replace("/messages", "")):
            read = await client.get(path, headers=other)
            assert read.status_code == 404 and read.json() == {"detail": "Not found."}, path
        mine = await client.get(url, headers=bearer(server.api_key))
        assert mine.status_code == 200 and mine.json()["results"] == []
