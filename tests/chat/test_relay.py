"""The relay WebSocket over real sockets against a served Roomkey (uvicorn): the handshake,
every kind of bad frame, permissions, limits at N and N+1, Unicode names, tenancy and
revocation. The real SignalWire clients are driven in tests/interop/test_signalwire_js.py."""

import asyncio
import json
import time
import unicodedata
import uuid

import pytest
import websockets

from chat.models import METADATA_MAX, TEXT_MAX
from tests.chat.relay_client import Relay
from tests.chat_served import AUTH_TIMEOUT_SECONDS
from tokens import live

RW = {"read": True, "write": True}
RO = {"read": True, "write": False}
MAX_FRAME = 128 * 1024


def room() -> str:
    """A fresh channel name per test: the served database is shared by the session."""
    return f"room-{uuid.uuid4().hex[:8]}"


async def test_v3_handshake(chat_server):
    name = room()
    token = chat_server.mint("alice", {name: RW, "ro": RO}, state={"s": 1})
    async with Relay.open(chat_server.relay) as relay:
        reply = await relay.connect(token)
    result = reply["result"]
    assert result["identity"] == "alice"
    auth = result["authorization"]
    assert auth["type"] == "chat" and auth["member_id"] == "alice"
    assert auth["project_id"] == chat_server.project_id
    assert auth["channels"] == {name: RW, "ro": RO}
    assert auth["expires_at"] > time.time() + 200
    # A v3 authorization must not look like a Fabric one (the client keys on "jti").
    assert "jti" not in auth


async def test_v4_handshake(chat_server):
    token = chat_server.mint("alice", [room()])
    async with Relay.open(chat_server.relay) as relay:
        auth = (await relay.connect(token, major=4))["result"]["authorization"]
    assert auth["jti"] and auth["fabric_subscriber"]["expires_at"] == auth["expires_at"]


@pytest.mark.parametrize("major", [2, 5, "3", None, True])
async def test_unknown_protocol_versions_are_refused(chat_server, major):
    token = chat_server.mint("alice", [room()])
    async with Relay.open(chat_server.relay) as relay:
        reply = await relay.connect(token, major=major)
        assert reply["error"]["code"] == -32602
        assert (await relay.connect(token))["result"]["identity"] == "alice"


async def test_socket_that_never_authenticates_is_closed(chat_server):
    async with Relay.open(chat_server.relay) as relay:
        started = time.monotonic()
        assert await relay.closed(timeout=AUTH_TIMEOUT_SECONDS + 3) == live.CLOSE_AUTH_TIMEOUT
    assert time.monotonic() - started >= AUTH_TIMEOUT_SECONDS * 0.8


async def test_requests_and_bad_frames_do_not_count_as_authentication(chat_server):
    async with Relay.open(chat_server.relay) as relay:
        reply = await relay.call("chat.subscribe", {"channels": [{"name": "x"}]})
        assert reply["error"]["code"] == -32001
        assert "result" in await relay.call("signalwire.ping", {})
        assert await relay.closed(timeout=AUTH_TIMEOUT_SECONDS + 3) == live.CLOSE_AUTH_TIMEOUT


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "", "rk_0123456789ab_" + "x" * 43, "a.b.c", 42, None],
)
async def test_bad_tokens_are_refused_and_the_socket_closed(chat_server, token):
    async with Relay.open(chat_server.relay) as relay:
        reply = await relay.connect(token)
        if isinstance(token, str):
            assert reply["error"]["code"] == -32002
            assert await relay.closed() == live.CLOSE_INVALID_TOKEN
        else:
            assert reply["error"]["code"] == -32602  # not even a string: bad params
            assert (await relay.call("signalwire.ping", {}))["result"]


async def test_a_revoked_token_cannot_connect(chat_server):
    token = chat_server.mint("alice", [room()])
    chat_server.revoke(token)
    async with Relay.open(chat_server.relay) as relay:
        reply = await relay.connect(token)
        # Refused without saying why (introspection does not say either): the reason is in
        # the server's log.
        assert reply["error"] == {"code": -32002, "message": "Authentication failed."}
        assert await relay.closed() == live.CLOSE_INVALID_TOKEN


async def test_an_api_key_is_not_a_chat_token(chat_server):
    async with Relay.open(chat_server.relay) as relay:
        reply = await relay.connect(chat_server.api_key)
        assert reply["error"]["code"] == -32002
        assert await relay.closed() == live.CLOSE_INVALID_TOKEN


async def test_another_projects_key_cannot_forge_into_this_project(chat_server):
    # A token of the other project authenticates as the other project, never this one.
    token = chat_server.mint("mallory", ["general"], other=True)
    async with Relay.open(chat_server.relay) as relay:
        auth = (await relay.connect(token))["result"]["authorization"]
    assert auth["project_id"] == chat_server.other_project_id


BAD_FRAMES = [
    ("not json", -32700),
    ('{"jsonrpc": "2.0", "id": "1", "method": "x", ', -32700),
    ("[1, 2, 3]", -32600),
    ('"a string"', -32600),
    ('{"jsonrpc": "2.0", "id": "1"}', -32600),
    ('{"jsonrpc": "1.0", "id": "1", "method": "signalwire.ping"}', -32600),
    ('{"jsonrpc": "2.0", "method": "signalwire.ping"}', -32600),
    ('{"jsonrpc": "2.0", "id": "1", "method": 7}', -32600),
    ('{"jsonrpc": "2.0", "id": "1", "method": "chat.nope", "params": {}}', -32601),
    ('{"jsonrpc": "2.0", "id": "1", "method": "chat.publish", "params": [1]}', -32602),
    ('{"jsonrpc": "2.0", "id": "1", "method": "signalwire.connect", "params": {}}', -32600),
    ('{"jsonrpc": "2.0", "id": "1", "method": "chat.publish", "params": {"x": NaN}}', -32700),
    ('{"jsonrpc": "2.0", "id": "1", "method": "chat.publish", "params": {"x": 1e999}}', -32700),
    ("[" * 50_000 + "]" * 50_000, -32700),
    # A batch (JSON-RPC arrays are not part of the relay's subset), even of a valid request.
    ('[{"jsonrpc": "2.0", "id": "1", "method": "signalwire.ping"}]', -32600),
    # Ids that are neither a string nor an integer, and one too long for Python's int().
    ('{"jsonrpc": "2.0", "id": {"a": 1}, "method": "signalwire.ping"}', -32600),
    ('{"jsonrpc": "2.0", "id": [1], "method": "signalwire.ping"}', -32600),
    ('{"jsonrpc": "2.0", "id": true, "method": "signalwire.ping"}', -32600),
    ('{"jsonrpc": "2.0", "id": ' + "9" * 5000 + ', "method": "signalwire.ping"}', -32700),
    # A notification (no id) of a chat method: an error, nothing published.
    (
        '{"jsonrpc": "2.0", "method": "chat.publish", "params": {"channel": "x", "content": "y"}}',
        -32600,
    ),
    ('{"jsonrpc": "2.0", "id": "1", "method": "chat.pub\u202elish", "params": {}}', -32601),
]


async def test_malformed_frames_get_errors_and_the_socket_stays_open(chat_server):
    token = chat_server.mint("alice", [room()])
    async with Relay.open(chat_server.relay) as relay:
        await relay.connect(token)
        for frame, code in BAD_FRAMES:
            await relay.send_raw(frame)
            reply = await relay.next_frame()
            assert reply["jsonrpc"] == "2.0" and reply["error"]["code"] == code, (frame, reply)
        await relay.send_raw(b"\x00binary")
        assert (await relay.next_frame())["error"]["code"] == -32600
        # Acks of events (and answers to pings) are accepted without a reply.
        await relay.send_raw(json.dumps({"jsonrpc": "2.0", "id": "ev-1", "result": {}}))
        await relay.no_event(0.2)
        assert "timestamp" in await relay.result("signalwire.ping", {"timestamp": 1})


async def test_chat_requests_with_bad_params_get_a_400_code(chat_server):
    name = room()
    token = chat_server.mint("alice", {name: RW})
    async with Relay.open(chat_server.relay) as relay:
        await relay.connect(token)
        bad = [
            ("chat.publish", {"content": "x"}),
            ("chat.publish", {"channel": name}),
            ("chat.publish", {"channel": name, "content": None}),
            ("chat.publish", {"channel": name, "content": "x", "meta": [1]}),
            ("chat.publish", {"channel": 5, "content": "x"}),
            ("chat.publish", {"channel": name, "content": "bad \x00 nul"}),
            ("chat.subscribe", {}),
            ("chat.subscribe", {"channels": []}),
            ("chat.subscribe", {"channels": 7}),
            ("chat.subscribe", {"channels": [{"nom": name}]}),
            ("chat.messages.get", {"channel": name, "cursor": {"after": "x", "before": "y"}}),
            ("chat.messages.get", {"channel": name, "cursor": {"after": "garbage"}}),
            ("chat.messages.get", {"channel": name, "cursor": "x"}),
            ("chat.members.get", {}),
            ("chat.member.set_state", {"channels": [name], "state": [1]}),
            ("chat.member.set_state", {"channels": [name]}),
            ("chat.member.get_state", {"member_id": 5, "channels": [name]}),
        ]
        for method, params in bad:
            result = await relay.result(method, params)
            assert result["code"] == "400", (method, params, result)
            assert result["message"]
        assert (await relay.result("chat.publish", {"channel": name, "content": "ok"}))[
            "code"
        ] == "200"


async def test_frame_size_cap_at_n_and_n_plus_1(chat_server):
    token = chat_server.mint("alice", [room()])

    def ping_of_size(size: int) -> str:
        frame = json.dumps(
            {"jsonrpc": "2.0", "id": "big", "method": "signalwire.ping", "params": {"pad": ""}}
        )
        frame = frame.replace('"pad": ""', '"pad": "' + "x" * (size - len(frame)) + '"')
        assert len(frame.encode()) == size
        return frame

    async with Relay.open(chat_server.relay, max_size=None) as relay:
        await relay.connect(token)
        await relay.send_raw(ping_of_size(MAX_FRAME))
        assert (await relay.next_frame())["id"] == "big"
        await relay.send_raw(ping_of_size(MAX_FRAME + 1))
        assert await relay.closed() == live.CLOSE_TOO_BIG


async def test_permissions(chat_server):
    rw, ro, other = room(), room(), room()
    token = chat_server.mint("alice", {rw: RW, ro: RO})
    write_only = chat_server.mint("wo", {rw: {"read": False, "write": True}})
    async with Relay.open(chat_server.relay) as relay:
        await relay.connect(token)
        # Read-only: subscribe, history and members yes; publish and member state no.
        assert (await relay.result("chat.subscribe", {"channels": [{"name": ro}]}))["code"] == "200"
        assert (await relay.result("chat.messages.get", {"channel": ro}))["code"] == "200"
        assert (await relay.result("chat.members.get", {"channel": ro}))["code"] == "200"
        for method, params in [
            ("chat.publish", {"channel": ro, "content": "no"}),
            ("chat.member.set_state", {"member_id": "alice", "channels": [ro], "state": {}}),
        ]:
            assert (await relay.result(method, params))["code"] == "403"
        # A channel not in the token: nothing at all.
        for method, params in [
            ("chat.subscribe", {"channels": [{"name": rw}, {"name": other}]}),
            ("chat.publish", {"channel": other, "content": "no"}),
            ("chat.messages.get", {"channel": other}),
            ("chat.members.get", {"channel": other}),
            ("chat.member.get_state", {"member_id": "alice", "channels": [other]}),
        ]:
            assert (await relay.result(method, params))["code"] == "403", method
        # The refused subscribe above subscribed to nothing, not even the allowed channel.
        members = await relay.result("chat.members.get", {"channel": rw})
        assert members["members"] == []
        # Another member's state is not this token's to set.
        result = await relay.result(
            "chat.member.set_state", {"member_id": "bob", "channels": [rw], "state": {}}
        )
        assert result["code"] == "403"
    async with Relay.open(chat_server.relay) as relay:
        await relay.connect(write_only)
        assert (await relay.result("chat.publish", {"channel": rw, "content": "w"}))[
            "code"
        ] == "200"
        for method, params in [
            ("chat.subscribe", {"channels": [{"name": rw}]}),
            ("chat.messages.get", {"channel": rw}),
        ]:
            assert (await relay.result(method, params))["code"] == "403"


async def test_limits_at_n_and_n_plus_1(chat_server):
    name = room()
    token = chat_server.mint("alice", {name: RW})
    meta_n = {"k": "m" * (METADATA_MAX - len('{"k":""}'))}
    meta_n1 = {"k": "m" * (METADATA_MAX + 1 - len('{"k":""}'))}
    state_n = {"k": "é" * (2000 - len('{"k":""}'))}  # characters, not bytes
    state_n1 = {"k": "é" * (2001 - len('{"k":""}'))}
    async with Relay.open(chat_server.relay) as relay:
        await relay.connect(token)
        cases = [
            ("chat.publish", {"channel": name, "content": "t" * TEXT_MAX}, "200"),
            ("chat.publish", {"channel": name, "content": "t" * (TEXT_MAX + 1)}, "400"),
            ("chat.publish", {"channel": name, "content": "x", "meta": meta_n}, "200"),
            ("chat.publish", {"channel": name, "content": "x", "meta": meta_n1}, "400"),
            ("chat.member.set_state", {"channels": [name], "state": state_n}, "200"),
            ("chat.member.set_state", {"channels": [name], "state": state_n1}, "400"),
            ("chat.messages.get", {"channel": name, "limit": 100}, "200"),
            ("chat.messages.get", {"channel": name, "limit": 101}, "400"),
            ("chat.messages.get", {"channel": name, "limit": 0}, "400"),
            ("chat.member.get_state", {"member_id": "m" * 250, "channels": [name]}, "200"),
            ("chat.member.get_state", {"member_id": "m" * 251, "channels": [name]}, "400"),
            ("chat.member.get_state", {"channels": [name] * 500}, "200"),
            ("chat.member.get_state", {"channels": [name] * 501}, "400"),
            ("chat.subscribe", {"channels": [{"name": name}] * 501}, "400"),
        ]
        for method, params, code in cases:
            result = await relay.result(method, params)
            assert result["code"] == code, (method, code, result.get("message"))
        history = await relay.result("chat.messages.get", {"channel": name})
        assert [len(m["content"]) for m in history["messages"]] == [1, TEXT_MAX]


async def test_unicode_names(chat_server):
    nfc = unicodedata.normalize("NFC", f"Ωmega-café-{uuid.uuid4().hex[:6]}")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    reader = chat_server.mint("reader", [nfc])
    writer = chat_server.mint("writer", [nfd])  # the token stores it as NFC
    async with Relay.open(chat_server.relay) as a, Relay.open(chat_server.relay) as b:
        await a.connect(reader)
        assert (await b.connect(writer))["result"]["authorization"]["channels"] == {nfc: RW}
        assert (await a.result("chat.subscribe", {"channels": [{"name": nfd}]}))["code"] == "200"
        assert (await b.result("chat.publish", {"channel": nfd, "content": "same"}))[
            "code"
        ] == "200"
        event = await a.event("chat.channel.message")
        assert event["channel"] == nfc and event["message"]["content"] == "same"
        for bad in ["evil\u202egnp", "tab\there", "sw_reserved", "x" * 251, ""]:
            result = await a.result("chat.publish", {"channel": bad, "content": "x"})
            assert result["code"] == "400", bad


async def test_tenancy_over_sockets(chat_server):
    ours = chat_server.mint("alice", ["general"])
    theirs = chat_server.mint("eve", ["general"], other=True)
    async with Relay.open(chat_server.relay) as a, Relay.open(chat_server.relay) as e:
        await a.connect(ours)
        await e.connect(theirs)
        for relay in (a, e):
            await relay.result("chat.subscribe", {"channels": [{"name": "general"}]})
        secret = f"for project A only {uuid.uuid4()}"
        await a.result("chat.publish", {"channel": "general", "content": secret})
        assert (await a.event("chat.channel.message"))["message"]["content"] == secret
        # Eve hears only her own project: her own join, never Alice's message or join.
        while True:
            try:
                frame = await e.event("chat.channel.message", timeout=0.4)
            except TimeoutError:
                break
            assert frame["message"]["content"] != secret
        history = await e.result("chat.messages.get", {"channel": "general", "limit": 100})
        assert secret not in [m["content"] for m in history["messages"]]
        members = await e.result("chat.members.get", {"channel": "general"})
        assert "alice" not in [m["id"] for m in members["members"]]


async def test_members_join_update_and_leave_with_their_sockets(chat_server):
    name = room()
    async with Relay.open(chat_server.relay) as a:
        await a.connect(chat_server.mint("alice", [name], state={"mood": "calm"}))
        await a.result("chat.subscribe", {"channels": [{"name": name}]})
        assert (await a.event("chat.member.joined"))["member"]["id"] == "alice"
        async with Relay.open(chat_server.relay) as b:
            await b.connect(chat_server.mint("bob", [name]))
            await b.result("chat.subscribe", {"channels": [{"name": name}]})
            joined = await a.event("chat.member.joined")
            assert joined == {
                "channel": name,
                "member": {"id": "bob", "channel": name, "state": {}},
            }
            members = (await a.result("chat.members.get", {"channel": name}))["members"]
            assert [m["id"] for m in members] == ["alice", "bob"]
            assert members[0]["state"] == {"mood": "calm"}
        # Closing bob's socket is leaving.
        left = await a.event("chat.member.left")
        assert left["member"]["id"] == "bob"
        members = (await a.result("chat.members.get", {"channel": name}))["members"]
        assert [m["id"] for m in members] == ["alice"]


async def test_revoking_the_token_closes_the_socket_within_a_second(chat_server):
    token = chat_server.mint("alice", [room()])
    async with Relay.open(chat_server.relay) as relay:
        await relay.connect(token)
        started = time.monotonic()
        await asyncio.to_thread(chat_server.revoke, token)
        assert await relay.closed(timeout=1.0) == live.CLOSE_REVOKED
        assert time.monotonic() - started < 1.0


async def test_origin_policy(chat_server):
    token = chat_server.mint("alice", [room()])
    allowed = [None, f"http://127.0.0.1:{chat_server.port}", "http://localhost:3000"]
    for origin in allowed:
        async with Relay.open(chat_server.relay, origin=origin) as relay:
            assert (await relay.connect(token))["result"]["identity"] == "alice"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with Relay.open(chat_server.relay, origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403


async def test_reauthenticate_moves_the_socket_to_a_fresh_token(chat_server):
    keep, drop = room(), room()
    first = chat_server.mint("alice", [keep, drop])
    second = chat_server.mint("alice", [keep])
    someone_else = chat_server.mint("bob", [keep])
    async with Relay.open(chat_server.relay) as relay:
        await relay.connect(first)
        await relay.result("chat.subscribe", {"channels": [{"name": keep}, {"name": drop}]})

        async def reauth(token):
            return await relay.call(
                "signalwire.reauthenticate", {"authentication": {"jwt_token": token}}
            )

        assert (await reauth(someone_else))["error"]["code"] == -32002
        assert (await reauth("garbage"))["error"]["code"] == -32002
        result = (await reauth(second))["result"]
        assert result["authorization"]["channels"] == {keep: RW}
        # The old token's revocation no longer concerns this socket; the new one's does.
        await asyncio.to_thread(chat_server.revoke, first)
        await asyncio.sleep(0.3)
        assert "result" in await relay.call("signalwire.ping", {})  # still open
        # Channels the new token does not grant were left.
        assert (await relay.result("chat.messages.get", {"channel": drop}))["code"] == "403"
        assert (await relay.result("chat.publish", {"channel": keep, "content": "still"}))[
            "code"
        ] == "200"
        await asyncio.to_thread(chat_server.revoke, second)
        assert await relay.closed(timeout=1.0) == live.CLOSE_REVOKED


async def test_channel_name_length_at_n_and_n_plus_1(chat_server):
    longest = "n" * 249 + uuid.uuid4().hex[:1]
    token = chat_server.mint("alice", [longest])
    async with Relay.open(chat_server.relay) as relay:
        await relay.connect(token)
        ok = await relay.result("chat.publish", {"channel": longest, "content": "x"})
        too_long = await relay.result("chat.publish", {"channel": longest + "n", "content": "x"})
    assert ok["code"] == "200" and too_long["code"] == "400"
