"""Limits of the WebSockets through real servers (two processes sharing Redis and the
database when REDIS_URL is set): connects per address, requests / frames per socket, the
projects' quotas of open sockets and voice-session length, and slots of a dead process."""

import asyncio
import json
import subprocess
import time

import httpx
from websockets.asyncio.client import connect

from limits.errors import CLOSE_QUOTA, CLOSE_RATE_LIMITED, CLOSE_SESSION_LENGTH
from tests.agents.test_voice_socket import close_code
from tests.chat.relay_client import Relay
from tests.limits.served import new_address
from tests.servers import ROOT, free_port, uvicorn_command
from tokens import live

RELAY = "/api/relay/ws"


async def connect_relay(limited, address, token, *, server=0):
    ws = await limited.ws(RELAY, address, server=server)
    relay = Relay(ws)
    return relay, await relay.connect(token)


def mint(limited, key, channels=("general",)):
    response = limited.http(new_address(), key=key).post(
        "/api/chat/tokens", json={"ttl": 5, "channels": list(channels)}
    )
    assert response.status_code == 200, response.text
    return response.json()["token"]


def voice_token(limited, project):
    response = limited.http(new_address(), key=project["key"]).post(
        "/v1/session-token", json={"agent_id": project["agent_id"]}
    )
    assert response.status_code == 200, response.text
    return response.json()["token"]


async def test_connects_are_limited_per_address_on_every_socket(limited):
    # 3 per minute per address (LIMITS_ENV), relay and voice handshakes alike.
    address = new_address()
    first = await limited.ws(RELAY, address, server=0)
    voice = await limited.ws("/v1/connection", address, server=1)
    assert await close_code(voice, within=2) == live.CLOSE_BAD_REQUEST  # admitted, then no token
    third = await limited.ws(RELAY, address, server=0)
    for server in (0, 1):
        refused = await limited.ws(RELAY, address, server=server)
        assert await close_code(refused, within=2) == CLOSE_RATE_LIMITED
    refused = await limited.ws("/v1/connection?token=x", address, server=1)
    assert await close_code(refused, within=2) == CLOSE_RATE_LIMITED
    # The sockets admitted are open (the relay waits for signalwire.connect).
    await first.send(json.dumps({"jsonrpc": "2.0", "id": "1", "method": "signalwire.ping"}))
    assert "result" in json.loads(await first.recv())
    await first.close()
    await third.close()
    other = await limited.ws(RELAY, new_address(), server=1)
    await other.send(json.dumps({"jsonrpc": "2.0", "id": "1", "method": "signalwire.ping"}))
    assert "result" in json.loads(await other.recv())
    await other.close()


async def test_relay_requests_per_socket_get_a_json_rpc_error_over_the_limit(limited):
    # 4 requests per minute per socket: signalwire.connect and three more; acks not counted.
    relay, connected = await connect_relay(limited, new_address(), mint(limited, limited.key()))
    assert "result" in connected
    for _ in range(3):
        assert "timestamp" in await relay.result("signalwire.ping")
        await relay.send_raw(json.dumps({"jsonrpc": "2.0", "id": "ack", "result": {}}))
    refused = await relay.call("signalwire.ping")
    assert refused["error"]["code"] == -32029
    assert 0 < refused["error"]["data"]["retry_after"] <= 60
    assert "Too many requests on this socket: at most 4 per minute" in refused["error"]["message"]
    refused = await relay.call("chat.subscribe", {"channels": [{"name": "general"}]})
    assert refused["error"]["code"] == -32029
    # The socket stays open; another socket has its own count.
    other, _ = await connect_relay(limited, new_address(), mint(limited, limited.key()), server=1)
    assert "timestamp" in await other.result("signalwire.ping")
    await relay.ws.close()
    await other.ws.close()


async def test_voice_frames_per_socket_get_an_error_event_over_the_limit(limited):
    # 3 frames per minute per voice socket.
    token = voice_token(limited, {"key": limited.key(), "agent_id": limited.demo["agent_id"]})
    async with limited.ws(f"/v1/connection?token={token}", new_address()) as ws:
        assert json.loads(await ws.recv())["type"] == "session.started"
        for _ in range(3):
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await ws.recv()) == {"type": "pong"}
        await ws.send(json.dumps({"type": "ping"}))
        event = json.loads(await ws.recv())
        assert event["type"] == "error" and event["code"] == "rate_limited"
        assert 0 < event["retry_after"] <= 60
        assert "Too many frames on this socket: at most 3 per minute" in event["message"]
        await ws.send(json.dumps({"type": "message", "text": "still here?"}))
        assert json.loads(await ws.recv())["code"] == "rate_limited"


async def test_failed_socket_authentications_count_against_the_address(limited):
    address = new_address()
    for server in (0, 1, 0):
        relay, answer = await connect_relay(limited, address, "not-a-token", server=server)
        assert answer["error"]["code"] == -32002
        assert await close_code(relay.ws, within=2) == live.CLOSE_INVALID_TOKEN
    # Over the budget: HTTP from the address is refused before its key is looked up.
    refused = limited.http(address, key=limited.key(), server=1).get("/api/v1/addresses")
    assert refused.status_code == 429
    assert "Too many failed authentications" in refused.json()["detail"]


async def test_failed_http_authentications_close_socket_handshakes(limited):
    address = new_address()
    for client in limited.clients(address, key="rk_000000000000_" + "y" * 43) * 3:
        if client.get("/api/v1/addresses").status_code != 401:
            break
    voice = await limited.ws("/v1/connection?token=x", address, server=1)
    assert await close_code(voice, within=2) == CLOSE_RATE_LIMITED
    relay = await limited.ws(RELAY, address, server=0)
    assert await close_code(relay, within=2) == CLOSE_RATE_LIMITED


async def test_chat_socket_quota_across_processes(limited):
    project = limited.projects["chat-quota"]  # max_chat_sockets 2
    token = mint(limited, project["key"])
    one, answer = await connect_relay(limited, new_address(), token, server=0)
    assert "result" in answer
    two, answer = await connect_relay(limited, new_address(), token, server=1)
    assert "result" in answer
    for server in (0, 1):
        three, answer = await connect_relay(limited, new_address(), token, server=server)
        assert answer["error"]["code"] == -32030
        assert answer["error"]["message"] == (
            "Quota reached: this project may have at most 2 chat sockets open at once."
        )
        assert await close_code(three.ws, within=2) == CLOSE_QUOTA
    # Another project is not concerned.
    other, answer = await connect_relay(limited, new_address(), mint(limited, limited.key()))
    assert "result" in answer
    # Closing one frees its slot, on any process.
    await one.ws.close()
    await asyncio.sleep(0.3)
    four, answer = await connect_relay(limited, new_address(), token, server=1)
    assert "result" in answer, answer
    for relay in (two, four, other):
        await relay.ws.close()


async def test_voice_socket_quota(limited):
    project = limited.projects["voice-quota"]  # max_voice_sockets 1
    first, second = voice_token(limited, project), voice_token(limited, project)
    async with limited.ws(f"/v1/connection?token={first}", new_address(), server=0) as ws:
        assert json.loads(await ws.recv())["type"] == "session.started"
        refused = await limited.ws(f"/v1/connection?token={second}", new_address(), server=1)
        assert await close_code(refused, within=2) == CLOSE_QUOTA
    await asyncio.sleep(0.3)
    # The refused session was not used up: it connects once the first has closed.
    async with limited.ws(f"/v1/connection?token={second}", new_address(), server=1) as ws:
        assert json.loads(await ws.recv())["type"] == "session.started"


async def test_a_voice_socket_closes_at_the_longest_session_length(limited):
    project = limited.projects["voice-length"]  # max_voice_session_seconds 2
    token = voice_token(limited, project)
    async with limited.ws(f"/v1/connection?token={token}", new_address()) as ws:
        started = json.loads(await ws.recv())
        opened = time.monotonic()
        assert await close_code(ws, within=5) == CLOSE_SESSION_LENGTH
        assert 1.9 <= time.monotonic() - opened < 3.5
    session = limited.shell(
        "import json; from agents.models import VoiceSession as V;"
        f"s = V.objects.get(pk='{started['session_id']}');"
        "print(json.dumps([s.status, s.end_reason]))"
    )
    assert session == ["ended", "session length limit"]


async def test_the_slots_of_a_dead_process_free_themselves(limited):
    project = limited.projects["lease"]  # max_chat_sockets 1; leases of 3 s
    token = mint(limited, project["key"])
    port = free_port()
    doomed = subprocess.Popen(uvicorn_command(port), env=limited.env, cwd=ROOT)
    try:
        _wait_until_serving(port)
        socket = await connect(f"ws://127.0.0.1:{port}{RELAY}", local_addr=(new_address(), 0))
        assert "result" in await Relay(socket).connect(token)
        doomed.kill()  # SIGKILL: no disconnect runs, the slot stays in the database
        doomed.wait(timeout=10)
    finally:
        doomed.kill()
    _, answer = await connect_relay(limited, new_address(), token)
    assert answer["error"]["code"] == -32030
    deadline = time.monotonic() + 6  # the lease is 3 s
    while True:
        relay, answer = await connect_relay(limited, new_address(), token)
        if "result" in answer:
            break
        assert time.monotonic() < deadline, "the dead process's slot was never freed"
        await asyncio.sleep(0.5)
    await relay.ws.close()


def _wait_until_serving(port) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.1)
