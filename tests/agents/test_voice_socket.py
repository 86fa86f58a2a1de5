"""The voice-session WebSocket `/v1/connection?token=` through a real uvicorn server, with the
`websockets` client; and the seed endpoints' oversize-body answers from the same server.

The server is a separate process on its own SQLite file (and Redis when REDIS_URL is set), so
tokens are minted over HTTP with the demo API key, and state is read back with manage.py.
"""

import asyncio
import json
import subprocess
import time

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.servers import MANAGE, ROOT, demo_server, uvicorn
from tokens import live


class Served:
    def __init__(self, base, port, demo, env):
        self.base, self.port, self.demo, self.env = base, port, demo, env
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {demo['api_key']}"}, timeout=10
        )

    def ws_url(self, token=None, port=None):
        query = "" if token is None else f"?token={token}"
        return f"ws://127.0.0.1:{port or self.port}/v1/connection{query}"

    def voice_token(self, **body) -> str:
        response = self.http.post(
            "/v1/session-token", json={"agent_id": self.demo["agent_id"], **body}
        )
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def revoke(self, token):
        assert self.http.post("/api/v1/tokens/revoke", data={"token": token}).status_code == 200

    def shell(self, code: str) -> dict:
        done = subprocess.run(
            [*MANAGE, "shell", "-c", code], env=self.env, cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    def session(self, session_id) -> dict:
        return self.shell(
            "import json; from agents.models import VoiceSession as V;"
            f"s = V.objects.get(pk='{session_id}');"
            "print(json.dumps({'status': s.status, 'end_reason': s.end_reason,"
            " 'connected': s.connected_at is not None, 'ended': s.ended_at is not None,"
            " 'messages': list(s.messages.values_list('text', flat=True))}))"
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with demo_server(tmp_path_factory, "voice") as (base, port, demo, env):
        yield Served(base, port, demo, env)


def ws_connect(served, token=None, *, port=None, origin=None):
    """A client the way a browser connects: with the page's Origin (the server's own host).
    Channels' AllowedHostsOriginValidator refuses sockets without one."""
    return connect(served.ws_url(token, port=port), origin=origin or served.base)


async def close_code(ws, within: float = 1.0) -> int | None:
    """Read until the server closes the socket (at most `within` seconds); its close code."""
    try:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def started(ws) -> dict:
    event = json.loads(await asyncio.wait_for(ws.recv(), 2))
    assert event["type"] == "session.started", event
    return event


async def exchange(ws, frame) -> dict:
    await ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))
    return json.loads(await asyncio.wait_for(ws.recv(), 2))


# --- Connecting and talking -----------------------------------------------------------------


async def test_session_lifecycle_messages_and_malformed_frames(served):
    token = served.voice_token(first_message="Override!")
    async with ws_connect(served, token) as ws:
        event = await started(ws)
        assert event["agent"]["id"] == served.demo["agent_id"]
        assert event["version"]["id"] == served.demo["version_id"]
        assert event["first_message"] == "Override!"
        assert event["prompt"].startswith("You are Roomkey's friendly demo agent")
        assert event["expires_at"] > time.time() + 3000
        session_id = event["session_id"]

        ack = await exchange(ws, {"type": "message", "text": "hello"})
        assert ack["type"] == "message.received" and ack["id"]
        # The message is in the session's chat conversation too, for the chat API and relay.
        found = served.http.get("/api/v1/addresses", params={"name": f"voice-{session_id}"}).json()[
            "results"
        ]
        assert [a["id"] for a in found] == [ack["conversation_id"]]
        history = served.http.get(
            f"/api/v1/conversations/{ack['conversation_id']}/messages"
        ).json()["results"]
        assert [(m["text"], m["user_name"]) for m in history] == [("hello", "caller")]
        assert (await exchange(ws, {"type": "ping"})) == {"type": "pong"}
        for frame, code in [
            ("not json", "invalid_json"),
            ("[1, 2]", "invalid_frame"),
            ({"no": "type"}, "invalid_frame"),
            ({"type": "message"}, "invalid_message"),
            ({"type": "message", "text": 5}, "invalid_message"),
            ({"type": "message", "text": "x" * 4001}, "message_too_long"),
            ({"type": "dance"}, "unknown_type"),
            (b"\x00\x01", "binary_not_supported"),
            ("[" * 50_000, "invalid_json"),
        ]:
            error = await exchange(ws, frame)
            assert error["type"] == "error" and error["code"] == code, (frame, error)
        at_limit = await exchange(ws, {"type": "message", "text": "y" * 4000})
        assert at_limit["type"] == "message.received"
        state = served.session(session_id)
        assert state["status"] == "connected" and state["connected"]
        assert state["messages"] == ["hello", "y" * 4000]
    # The client closed: the session ended, and says why.
    for _ in range(20):
        state = served.session(session_id)
        if state["status"] == "ended":
            break
        await asyncio.sleep(0.1)
    assert state["status"] == "ended" and state["end_reason"] == "client closed (1000)"
    # A session has one life: its token cannot open it again (the same refusal as any token
    # that cannot open a session), and is revoked.
    async with ws_connect(served, token) as ws:
        assert await close_code(ws) == live.CLOSE_INVALID_TOKEN
    answer = served.http.post("/api/v1/tokens/introspect", data={"token": token}).json()
    assert answer == {"active": False}


async def test_frames_over_the_cap_close_with_1009(served):
    async with ws_connect(served, served.voice_token()) as ws:
        event = await started(ws)
        # 64 KiB is accepted (as a frame; its text is then too long for a message)...
        padding = 64 * 1024 - len('{"type":"message","text":""}')
        reply = await exchange(
            ws, json.dumps({"type": "message", "text": "z" * padding}, separators=(",", ":"))
        )
        assert reply["code"] == "message_too_long"
        # ...one byte more closes the socket.
        await ws.send(
            json.dumps({"type": "message", "text": "z" * (padding + 1)}, separators=(",", ":"))
        )
        assert await close_code(ws) == live.CLOSE_TOO_BIG
    state = served.session(event["session_id"])
    assert state["status"] == "ended" and state["end_reason"] == "frame too large"


async def test_a_second_socket_for_a_connected_session_is_refused(served):
    token = served.voice_token()
    async with ws_connect(served, token) as first:
        await started(first)
        async with ws_connect(served, token) as second:
            assert await close_code(second) == live.CLOSE_INVALID_TOKEN
        assert (await exchange(first, {"type": "ping"})) == {"type": "pong"}


# --- Refused tokens -------------------------------------------------------------------------


def _forged_with_another_projects_key(served) -> str:
    """A voice token naming the demo project, signed with another project's real key."""
    return served.shell(
        "import json, time; from tokens import crypto, services as s;"
        "from tokens.models import Project, SigningKey;"
        "p = Project.objects.filter(name='Other').first() or s.project_create(name='Other')[0];"
        "k = SigningKey.objects.filter(project=p).first();"
        "demo = Project.objects.get(name='Demo'); now = int(time.time());"
        "t = crypto.jwt_encode({'iss': str(demo.pk), 'sub': 'x', 'jti': 'f' * 32, 'iat': now,"
        " 'exp': now + 600, 'aud': 'roomkey:voice-session'}, secret=bytes(k.secret),"
        " alg='HS256', headers={'typ': 'voice-session+jwt', 'kid': k.kid});"
        "print(json.dumps({'token': t}))"
    )["token"]


async def test_refused_tokens(served):
    chat = served.http.post("/api/chat/tokens", json={"ttl": 5, "channels": ["general"]})
    webrtc = served.http.post(
        "/v1/session-token", json={"agent_id": served.demo["agent_id"], "transport": "webrtc"}
    )
    assert served.http.post("/api/v1/sessions", json={"call_id": "ws-refused"}).is_success
    tool = served.http.post("/api/v1/sessions/ws-refused/tool-tokens", json={"function": "fn"})
    revoked = served.voice_token()
    served.revoke(revoked)
    cases = [
        (None, live.CLOSE_BAD_REQUEST),
        ("", live.CLOSE_BAD_REQUEST),
        ("garbage", live.CLOSE_INVALID_TOKEN),
        (chat.json()["token"], live.CLOSE_INVALID_TOKEN),
        (webrtc.json()["token"], live.CLOSE_INVALID_TOKEN),
        (tool.json()["token"], live.CLOSE_INVALID_TOKEN),
        (_forged_with_another_projects_key(served), live.CLOSE_INVALID_TOKEN),
        (revoked, live.CLOSE_INVALID_TOKEN),
    ]
    for token, code in cases:
        async with ws_connect(served, token) as ws:
            assert await close_code(ws) == code, token
            if code == live.CLOSE_INVALID_TOKEN:
                # One refusal, whatever the reason: the client is not told which.
                assert ws.close_reason == "invalid token", token


async def test_origin_is_checked(served):
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(served, served.voice_token(), origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    # No Origin at all: a server-side client (agent worker, Node), which a browser cannot be.
    async with connect(served.ws_url(served.voice_token())) as ws:
        await started(ws)
    async with ws_connect(served, served.voice_token()) as ws:
        await started(ws)


# --- Closed from outside --------------------------------------------------------------------


async def test_revoking_the_token_closes_the_socket_within_a_second(served):
    token = served.voice_token()
    async with ws_connect(served, token) as ws:
        event = await started(ws)
        served.revoke(token)
        assert await close_code(ws, within=1.0) == live.CLOSE_REVOKED
    state = served.session(event["session_id"])
    assert state["status"] == "ended" and state["end_reason"] == "revoked"


def _admin_end_session(served, session_id):
    with httpx.Client(base_url=served.base) as browser:
        browser.get("/admin/login/")
        login = browser.post(
            "/admin/login/?next=/admin/",
            data={
                "username": served.demo["admin_username"],
                "password": served.demo["admin_password"],
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            },
            headers={"Referer": served.base + "/admin/login/"},
        )
        assert login.status_code == 302, login.text[:500]
        page = browser.get(f"/admin/agents/voicesession/{session_id}/change/")
        assert page.status_code == 200 and "connected" in page.text.lower()
        response = browser.post(
            "/admin/agents/voicesession/",
            data={
                "action": "end_sessions",
                "_selected_action": session_id,
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            },
            headers={"Referer": served.base + "/admin/agents/voicesession/"},
        )
        assert response.status_code == 302, response.text[:500]


async def test_ending_the_session_in_the_admin_closes_the_socket(served):
    token = served.voice_token()
    async with ws_connect(served, token) as ws:
        event = await started(ws)
        await asyncio.to_thread(_admin_end_session, served, event["session_id"])
        assert await close_code(ws, within=1.0) == live.CLOSE_ENDED
    state = served.session(event["session_id"])
    assert state["status"] == "ended" and state["end_reason"].startswith("ended by admin:")
    # Its token was revoked with it.
    answer = served.http.post("/api/v1/tokens/introspect", data={"token": token}).json()
    assert answer == {"active": False}


async def test_the_socket_closes_at_expiry(served):
    # A second server on the same database whose voice tokens live two seconds.
    env = {**served.env, "ROOMKEY_VOICE_SESSION_TTL_SECONDS": "2"}
    with uvicorn(env) as (base, port):
        response = httpx.post(
            base + "/v1/session-token",
            json={"agent_id": served.demo["agent_id"]},
            headers={"Authorization": f"Bearer {served.demo['api_key']}"},
        )
        token = response.json()["token"]
        async with ws_connect(served, token, port=port) as ws:
            event = await started(ws)
            assert event["expires_at"] <= time.time() + 2
            assert await close_code(ws, within=3.5) == live.CLOSE_EXPIRED
        # And an expired token is refused outright.
        async with ws_connect(served, served.voice_token(), port=port) as ws:
            await started(ws)  # a fresh one from the main server still works here
        await asyncio.sleep(max(0.0, event["expires_at"] - time.time()) + 0.1)
        async with ws_connect(served, token, port=port) as ws:
            assert await close_code(ws) == live.CLOSE_INVALID_TOKEN
    state = served.session(event["session_id"])
    assert state["status"] == "ended" and state["end_reason"] == "expired"


async def test_the_token_in_the_url_stays_out_of_the_servers_log(served, tmp_path):
    log_path = tmp_path / "uvicorn.log"
    token = served.voice_token()
    with log_path.open("wb") as log, uvicorn(served.env, log_level="info", stderr=log) as (_, port):
        async with ws_connect(served, token, port=port) as ws:
            await started(ws)
        async with ws_connect(served, "garbage-token", port=port) as ws:
            assert await close_code(ws) == live.CLOSE_INVALID_TOKEN
    text = log_path.read_text()
    assert '"WebSocket /v1/connection?token=[redacted]" [accepted]' in text, text[-2000:]
    assert token not in text and "garbage-token" not in text


# --- Oversize bodies in the seeds' envelopes (tokens.asgi, before Django reads them) ---------


def test_oversize_bodies_are_answered_in_each_seeds_envelope(served):
    big = b"x" * (1024 * 1024 + 1)
    headers = {"Content-Type": "application/json"}
    session = httpx.post(served.base + "/v1/session-token", content=big, headers=headers)
    assert session.status_code == 422
    assert session.json() == {"error": "Request body is larger than 1048576 bytes."}
    web_call = httpx.post(served.base + "/web_call/get_token", content=big, headers=headers)
    assert web_call.status_code == 422
    assert web_call.json() == {
        "success": False,
        "message": "Request body is larger than 1048576 bytes.",
        "data": None,
    }
    # Chunked (no Content-Length) as well, and the old answers stay as they were.
    chunks = (big[i : i + 65536] for i in range(0, len(big), 65536))
    chunked = httpx.post(served.base + "/web_call/get_token", content=chunks, headers=headers)
    assert chunked.status_code == 422 and chunked.json()["success"] is False
    assert httpx.post(served.base + "/api/v1/tokens/introspect", content=big).status_code == 413
    assert httpx.post(served.base + "/api/chat/tokens", content=big).status_code == 422
    # At the limit the body reaches the view (and is judged as JSON).
    at_limit = b" " * (1024 * 1024 - 2) + b"{}"
    answer = served.http.post("/v1/session-token", content=at_limit, headers=headers)
    assert answer.status_code == 422 and answer.json() == {
        "error": "agent_id: This field is required."
    }
