"""The standing fuzz test: hostile requests and frames against every endpoint and both sockets,
with valid credentials, built by Hypothesis (tests/fuzz.py). Whatever is sent: no 5xx, every
answer JSON in the endpoint's own format, and no socket dropped — a socket closes only with a
documented code for its documented reason (1009 for a frame over the cap; 4001 for a refused
token at the relay's `signalwire.connect` or in the voice socket's URL, 4000 for none).

HTTP runs in process through Django's test client (the real middleware, parsers and views) for
speed, and a smaller share through a real uvicorn, as the sockets do. The budget is
ROOMKEY_FUZZ_EXAMPLES (examples per endpoint; see tests/fuzz.py), and a failure names the seed
to replay it with: ROOMKEY_FUZZ_SEED=<seed>.
"""

import itertools
import json
import uuid

import httpx
import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from hypothesis import assume, given, note, seed, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from agents.conf import agents_settings
from agents.models import Assistant, LiveKitConfig
from chat.conf import chat_settings
from tests.agents.conftest import make_agent
from tests.chat_served import served_database
from tests.fuzz import (
    ENDPOINTS,
    EXAMPLES,
    FUZZ_SETTINGS,
    SEED,
    Answer,
    Request,
    World,
    apply,
    build_request,
    check_answer,
    http_plans,
    mutations,
    query_string,
    raw_bodies,
    url_texts,
    values,
    weighted,
)
from tests.servers import prepare_database, server_env, uvicorn
from tokens import live
from tokens import services as token_services

SERVED_EXAMPLES = max(4, EXAMPLES // 4)
SOCKET_EXAMPLES = EXAMPLES * 4
REPLY_TIMEOUT = 5.0


def fuzz(examples: int):
    """@given(...) with the fuzz profile, `examples` examples and the run's seed."""

    def decorate(test):
        return seed(SEED)(settings(FUZZ_SETTINGS, max_examples=examples)(test))

    return decorate


def replay_note() -> None:
    note(f"replay with ROOMKEY_FUZZ_SEED={SEED}")


# --- HTTP in process ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def in_process_world(django_db_setup, django_db_blocker):
    """A project with an agent, an assistant and every token-source field open, through the
    test client (real middleware, parsers and views; an exception in a view fails the test).

    One world for every endpoint of the module, in autocommit as in production; flushed at
    the end as a transactional test leaves the database (once, not once per endpoint).
    Rate limits are off: the fuzzer mangles credentials on purpose (tests/limits tests them)."""
    from django.conf import settings as django_settings

    limits_off = override_settings(
        ROOMKEY_LIMITS={**django_settings.ROOMKEY_LIMITS, "RATE_LIMITS": False}
    )
    client = Client(raise_request_exception=True)

    def send(request: Request) -> Answer:
        headers = {k: v for k, v in request.headers.items() if k != "Content-Type"}
        response = client.generic(
            request.method,
            request.path,
            data=request.body or b"",
            content_type=request.headers.get("Content-Type", ""),
            headers=headers,
        )
        return Answer(response.status_code, response.get("Content-Type", ""), response.content)

    with django_db_blocker.unblock(), limits_off:
        project, key = token_services.project_create(name="Fuzz")
        agent, version = make_agent(project, dispatch_name="demo-agent")
        assistant = Assistant.objects.create(
            project=project, name="A", dispatch_name="demo-assistant", prompt_template="Hi {{name}}"
        )
        LiveKitConfig.objects.create(
            project=project,
            token_source_fields=[*LiveKitConfig.DEFAULT_TOKEN_SOURCE_FIELDS, "room_config"],
        )
        try:
            yield World(
                send=send,
                project_id=str(project.pk),
                api_key=key.raw,
                agent_id=str(agent.pk),
                version_id=str(version.pk),
                assistant_id=str(assistant.pk),
            ).setup()
        finally:
            call_command("flush", interactive=False, verbosity=0)


def run_http(endpoint, world, examples):
    @fuzz(examples)
    @given(plan=http_plans(endpoint))
    def case(plan):
        replay_note()
        request = build_request(endpoint, world, plan)
        note(f"{request.method} {request.path:.300} {request.headers} {request.body!r:.300}")
        check_answer(endpoint, world.send(request))

    case()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_http_in_process(endpoint, in_process_world):
    run_http(endpoint, in_process_world, EXAMPLES)


# --- A served Roomkey (uvicorn) -----------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """uvicorn on a database of its own (PostgreSQL when DATABASE_URL is), with the demo
    data, sharing REDIS_URL when set: (base_url, port, World)."""
    with served_database(tmp_path_factory, "fuzz") as database_url:
        # The fuzzer mangles credentials on purpose, so its address would soon be over the
        # failed-authentication budget: rate limits are off here (tests/limits tests them).
        env = server_env(database_url, ROOMKEY_RATE_LIMITS="false")
        demo = prepare_database(env)
        with uvicorn(env) as (base, port), httpx.Client(base_url=base, timeout=30) as http:

            def send(request: Request) -> Answer:
                response = http.request(
                    request.method, request.path, content=request.body, headers=request.headers
                )
                return Answer(
                    response.status_code, response.headers.get("content-type", ""), response.content
                )

            world = World(
                send=send,
                project_id=demo["project_id"],
                api_key=demo["api_key"],
                agent_id=demo["agent_id"],
                version_id=demo["version_id"],
                assistant_id=demo["assistant_id"],
            ).setup()
            yield base, port, world


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_http_served(endpoint, served):
    run_http(endpoint, served[2], SERVED_EXAMPLES)


# --- Sockets ------------------------------------------------------------------------------


class Socket:
    """One WebSocket of the fuzz, opened on first use and again after a documented close."""

    def __init__(self, open_):
        self.open_ = open_
        self.ws = None

    def get(self):
        if self.ws is None:
            self.ws = self.open_()
        return self.ws

    def drop(self):
        if self.ws is not None:
            self.ws.close()
        self.ws = None


def open_ws(url: str):
    """A client connection that the caller closes (websockets' connect() is a context manager
    that closes on exit)."""
    return ws_connect(url, max_size=None).__enter__()


def close_code(exc: ConnectionClosed) -> int | None:
    return exc.rcvd.code if exc.rcvd else None  # None: no close frame (1006)


def padded(frame: dict, size: int) -> str:
    """`frame` as JSON of exactly `size` bytes (padded in a `pad` member)."""
    text = json.dumps({**frame, "pad": ""})
    return text.replace('"pad": ""', '"pad": "' + "x" * (size - len(text.encode())) + '"')


def exchange(socket: Socket, frame, probe: str, *, done, big: bool, allowed=frozenset()) -> None:
    """Send `frame`, then `probe` (a request with a known answer), and read until `done(reply)`,
    which also checks each reply. The server may close the socket only with a code in `allowed`,
    or 1009 for a frame over the cap (`big`), which must not be answered instead."""
    ws = socket.get()
    try:
        ws.send(frame)
        ws.send(probe)
        while not done(receive_json(ws)):
            pass
    except ConnectionClosed as exc:
        socket.drop()
        code = close_code(exc)
        ok = set(allowed) | ({live.CLOSE_TOO_BIG} if big else set())
        assert code in ok, f"socket closed with {code}"
        return
    assert not big, "a frame over the cap was taken"


def receive_json(ws) -> dict:
    frame = ws.recv(timeout=REPLY_TIMEOUT)
    assert isinstance(frame, str), frame
    return json.loads(frame)


# --- The relay ----------------------------------------------------------------------------

RELAY_METHODS = [
    "signalwire.ping",
    "signalwire.connect",
    "signalwire.reauthenticate",
    "chat.subscribe",
    "chat.unsubscribe",
    "chat.publish",
    "chat.messages.get",
    "chat.members.get",
    "chat.member.set_state",
    "chat.member.get_state",
]
PARAM_KEYS = ("channel", "channels", "content", "meta", "cursor", "limit", "member_id", "state",
              "version", "authentication")  # fmt: skip


def relay_params(method: str, world: World, tokens: dict) -> dict:
    channel = world.channel
    return {
        "signalwire.ping": {},
        "signalwire.connect": {
            "version": {"major": 3, "minor": 0, "revision": 0},
            "authentication": {"jwt_token": tokens["connect"]},
        },
        "signalwire.reauthenticate": {"authentication": {"jwt_token": tokens["again"]}},
        "chat.subscribe": {"channels": [{"name": channel}]},
        "chat.unsubscribe": {"channels": [{"name": channel}]},
        "chat.publish": {"channel": channel, "content": "hi", "meta": {"k": "v"}},
        "chat.messages.get": {"channel": channel, "limit": 10},
        "chat.members.get": {"channel": channel},
        "chat.member.set_state": {"channels": [channel], "state": {"typing": True}},
        "chat.member.get_state": {"channels": [channel], "member_id": world.relay_member},
    }[method]


relay_plans = st.fixed_dictionaries(
    {
        "method": st.sampled_from(RELAY_METHODS),
        "kind": st.sampled_from(["ops"] * 10 + ["replace", "raw", "binary", "ack", "big", "fit"]),
        "ops": st.lists(mutations(("jsonrpc", "id", "method", "params")), max_size=2),
        "params_ops": st.lists(mutations(PARAM_KEYS), max_size=2),
        "value": values,
        "raw": weighted(
            (1, st.text(st.characters(exclude_categories=("Cs",)), max_size=40)),
            (1, st.sampled_from(["", "{", "[]", "null", '{"jsonrpc": "2.0"}', "\x00", "1e400"])),
        ),
        "binary": raw_bodies,
    }
)


def relay_frame(plan: dict, world: World, tokens: dict, rid: str) -> tuple[str | bytes, dict]:
    """(the frame to send, what is known of it: `connect` for a signalwire.connect request)."""
    method = plan["method"]
    params = apply(relay_params(method, world, tokens), plan["params_ops"])
    frame = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
    kind = plan["kind"]
    cap = chat_settings.MAX_FRAME_BYTES
    if kind == "raw":
        return plan["raw"], {}
    if kind == "binary":
        return plan["binary"], {}
    if kind == "replace":
        return json.dumps(plan["value"]), {}
    if kind == "ack":
        return json.dumps({"jsonrpc": "2.0", "id": rid, "result": plan["value"]}), {}
    if kind in ("big", "fit"):
        ping = {"jsonrpc": "2.0", "id": rid, "method": "signalwire.ping", "params": {}}
        return padded(ping, cap + (kind == "big")), {}
    frame = apply(frame, plan["ops"])
    connect = isinstance(frame, dict) and frame.get("method") == "signalwire.connect"
    return json.dumps(frame), {"connect": connect}


def over(frame: str | bytes, cap: int) -> bool:
    """Is `frame` over a socket's cap of `cap` bytes (its UTF-8 size, for text)?"""
    return len(frame.encode() if isinstance(frame, str) else frame) > cap


def check_relay_frame(frame: dict) -> bool:
    """Assert `frame` is a JSON-RPC answer or a pushed event (and say True)."""
    assert isinstance(frame, dict) and frame.get("jsonrpc") == "2.0", frame
    if "method" in frame:
        assert frame["method"] == "signalwire.event" and isinstance(frame["params"], dict), frame
        return True
    assert "id" in frame and ("result" in frame) != ("error" in frame), frame
    if "error" in frame:
        error = frame["error"]
        assert isinstance(error["code"], int) and isinstance(error["message"], str), frame
    return True


@pytest.fixture(scope="module")
def relay_world(served):
    _base, port, world = served
    tokens = {
        "connect": world.chat_token_for(world.relay_member),
        "again": world.chat_token_for(world.relay_member),
    }
    return f"ws://127.0.0.1:{port}/api/relay/ws", world, tokens


@pytest.mark.parametrize("version", [3, 4, None], ids=["v3", "v4", "unauthenticated"])
def test_relay_frames(relay_world, version):
    url, world, tokens = relay_world
    probes = itertools.count()

    def open_socket():
        ws = open_ws(url)
        if version is not None:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": "c", "method": "signalwire.connect",
                                "params": {**relay_params("signalwire.connect", world, tokens),
                                           "version": {"major": version}}}))  # fmt: skip
            assert "result" in receive_json(ws)
        return ws

    socket = Socket(open_socket)

    @fuzz(SOCKET_EXAMPLES)
    @given(plan=relay_plans)
    def case(plan):
        replay_note()
        rid = f"f-{uuid.uuid4().hex[:8]}"
        frame, known = relay_frame(plan, world, tokens, rid)
        note(f"frame {frame!r:.300}")
        if version is None:
            socket.drop()  # each case on a socket that has not authenticated
        probe = f"probe-{next(probes)}"
        allowed = set()
        if version is None and known.get("connect"):
            allowed.add(live.CLOSE_INVALID_TOKEN)  # a refused token at connect
        exchange(
            socket,
            frame,
            json.dumps({"jsonrpc": "2.0", "id": probe, "method": "signalwire.ping"}),
            done=lambda reply: check_relay_frame(reply) and reply.get("id") == probe,
            big=over(frame, chat_settings.MAX_FRAME_BYTES),
            allowed=allowed,
        )

    try:
        case()
    finally:
        socket.drop()


# --- The voice-session socket -------------------------------------------------------------

voice_plans = st.fixed_dictionaries(
    {
        "base": st.sampled_from([{"type": "message", "text": "hello"}, {"type": "ping"}]),
        "kind": st.sampled_from(["ops"] * 10 + ["replace", "raw", "binary", "big", "fit"]),
        "ops": st.lists(mutations(("type", "text")), max_size=3),
        "value": values,
        "raw": st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
        "binary": raw_bodies,
    }
)


def voice_frame(plan: dict) -> tuple[str | bytes, bool]:
    """(the frame, does it ask for a pong)."""
    kind = plan["kind"]
    cap = agents_settings.VOICE_FRAME_MAX_BYTES
    if kind == "raw":
        text = plan["raw"]
        try:
            asks = json.loads(text) == {"type": "ping"}
        except ValueError:
            asks = False
        return text, asks
    if kind == "binary":
        return plan["binary"], False
    if kind in ("big", "fit"):
        return padded({"type": "ping"}, cap + (kind == "big")), kind == "fit"
    value = plan["value"] if kind == "replace" else apply(plan["base"], plan["ops"])
    asks = isinstance(value, dict) and value.get("type") == "ping"
    return json.dumps(value), asks


def voice_token(world: World) -> str:
    body = {"agent_id": world.agent_id, "transport": "websocket"}
    return world.call("POST", "/v1/session-token", body)["token"]


def test_voice_frames(served):
    _base, port, world = served
    url = f"ws://127.0.0.1:{port}/v1/connection"

    def open_socket():
        ws = open_ws(f"{url}?token={voice_token(world)}")
        assert receive_json(ws)["type"] == "session.started"
        return ws

    socket = Socket(open_socket)

    @fuzz(SOCKET_EXAMPLES)
    @given(plan=voice_plans)
    def case(plan):
        replay_note()
        frame, asks = voice_frame(plan)
        note(f"frame {frame!r:.300}")
        pongs = [1 + asks]  # ours, and one for a frame that is a ping itself

        def done(reply):
            assert isinstance(reply, dict) and isinstance(reply.get("type"), str), reply
            if reply["type"] == "error":
                assert isinstance(reply["code"], str) and isinstance(reply["message"], str)
            pongs[0] -= reply["type"] == "pong"
            return pongs[0] == 0

        exchange(
            socket,
            frame,
            json.dumps({"type": "ping"}),
            done=done,
            big=over(frame, agents_settings.VOICE_FRAME_MAX_BYTES),
        )

    try:
        case()
    finally:
        socket.drop()


# Opening the voice socket with a mutated token parameter: refused with a documented code.
TOKEN_REFUSALS = {
    live.CLOSE_BAD_REQUEST,
    live.CLOSE_INVALID_TOKEN,
    live.CLOSE_REVOKED,
    live.CLOSE_EXPIRED,
    live.CLOSE_ENDED,
}


def test_voice_token_parameter(served):
    _base, port, world = served
    url = f"ws://127.0.0.1:{port}/v1/connection"
    used = voice_token(world)
    # A token that opened its session once (and closed it) does not open it again.
    with ws_connect(f"{url}?token={used}") as first:
        assert receive_json(first)["type"] == "session.started"
    known = {"used": used, "chat": world.chat_token, "used+nul": used + "\x00"}

    @fuzz(EXAMPLES)
    @given(
        query=weighted(
            (4, st.lists(st.tuples(st.sampled_from(["token", "x"]), url_texts), max_size=2)),
            (1, st.lists(st.tuples(url_texts, url_texts), max_size=2)),
            (1, st.sampled_from(sorted(known)).map(lambda name: [("token", known[name])])),
        )
    )
    def case(query):
        replay_note()
        qs = query_string(query)
        # uvicorn's WebSocket handshake does not answer a request line over websockets' 8 KiB
        # line limit (the client waits for its timeout): a server limit, not the app's.
        assume(len(qs) < 7500)
        note(f"?{qs:.300}")
        with ws_connect(f"{url}?{qs}", max_size=None) as ws:
            try:
                event = receive_json(ws)
            except ConnectionClosed as exc:
                assert close_code(exc) in TOKEN_REFUSALS, f"closed with {close_code(exc)}"
            else:
                raise AssertionError(f"a session opened: {event}")

    case()


# --- The handshake's Origin header --------------------------------------------------------

origins = weighted(
    (2, st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                max_size=60)),
    (1, st.sampled_from(["null", "http://", "http://[::1", "http://127.0.0.1:99999",
                         "https://evil.example", "http://127.0.0.1", "file://", "//x", "*"])),
)  # fmt: skip


@pytest.mark.parametrize("path", ["/api/relay/ws", "/v1/connection"], ids=["relay", "voice"])
def test_socket_origin_header(served, path):
    """Any Origin: the handshake is refused with 403 before a consumer runs, or the socket
    opens and answers as usual (the voice socket then refuses the missing token with 4000)."""
    _base, port, _world = served

    @fuzz(EXAMPLES)
    @given(origin=origins)
    def case(origin):
        replay_note()
        note(f"Origin: {origin!r}")
        try:
            ws = ws_connect(
                f"ws://127.0.0.1:{port}{path}", additional_headers={"Origin": origin}
            ).__enter__()
        except InvalidStatus as exc:
            assert exc.response.status_code == 403, exc.response.status_code
            return
        try:
            if path == "/v1/connection":
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(timeout=REPLY_TIMEOUT)
                assert close_code(closed.value) == live.CLOSE_BAD_REQUEST
            else:
                ws.send(json.dumps({"jsonrpc": "2.0", "id": "p", "method": "signalwire.ping"}))
                assert "result" in receive_json(ws)
        finally:
            ws.close()

    case()
