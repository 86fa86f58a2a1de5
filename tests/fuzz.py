"""The fuzzer's parts (tests/test_fuzz.py runs them): what a hostile client sends, built by
Hypothesis from a valid request of each endpoint and frame of each socket, and what every
answer must be whatever was sent: no 5xx, JSON, in the endpoint's own error format.

A case is a *plan* drawn by Hypothesis — mutations of a valid body or frame (any JSON value
in any place: wrong types, Unicode with NUL and lone surrogates, nesting, strings at and past
each documented limit), raw bodies, path segments, query parameters, content types,
credentials — applied to a `World` of real objects (a project, an agent, a channel, a call
session, tokens) made through the API of the server under test.
"""

import base64
import itertools
import json
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

# --- Budget and settings ------------------------------------------------------------------

# Examples per fuzzed target (each HTTP endpoint in process); the served-HTTP and socket tests
# derive theirs from it (tests/test_fuzz.py). The default, about 3,100 cases in all, keeps the
# fuzz tests near a minute per backend.
EXAMPLES = int(os.environ.get("ROOMKEY_FUZZ_EXAMPLES") or 50)
# A failing run prints its seed; ROOMKEY_FUZZ_SEED=<seed> replays the same cases.
SEED = int(os.environ.get("ROOMKEY_FUZZ_SEED") or random.SystemRandom().randrange(2**32))

# Hypothesis keeps caches (its Unicode tables) in a home directory: in the system's temp
# directory rather than the work tree, and no example database at all.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "roomkey-hypothesis")
settings.register_profile(
    "roomkey-fuzz",
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
FUZZ_SETTINGS = settings.get_profile("roomkey-fuzz")


def weighted(*choices):
    """One of the strategies, each drawn with its weight: (weight, strategy), … (Hypothesis's
    one_of does not draw its branches evenly, so a fuzzer that must reach each kind of input
    often picks the kind itself, uniformly.)"""
    indexes = [i for i, (weight, _) in enumerate(choices) for _ in range(weight)]
    return st.sampled_from(indexes).flatmap(lambda i: choices[i][1])


# --- Values -------------------------------------------------------------------------------

# Lengths around the documented limits (names, ids, keys, texts, serialised objects).
LENGTHS = [0, 1, 31, 32, 33, 64, 65, 100, 101, 128, 200, 201, 250, 251, 256, 257, 1024, 2000,
           2001, 4000, 4001, 8192, 8193, 16000, 16001, 16384, 16385]  # fmt: skip
FILLERS = ["x", "é", "\U0001f600", "\x00", "\ud800", " ", "e\u0301"]
SPECIAL_TEXT = [
    "", " ", "\x00", "a\x00b", "\ud800", "\udfff", "x\ud800y", "\ud83d", "\udc00\ud800",
    "\u202e", "\u2066", "\ufeff", "\x7f", "\x1b[31m", "\n", "\t", "\r\n", "é", "e\u0301",
    "\U0001f600", "sw_x", "sw_", "null", "true", "0", "-1", "1e400", "NaN", ".", "..", "../x",
    "%00", "%ED%A0%80", "a/b", "?x=1", "#", "<script>", "' OR 1=1 --", "general", "websocket",
    "webrtc", "chat", "log", "lookup", "demo-agent", "00000000-0000-0000-0000-000000000000",
    "\\u0000", "\\ud800",
]  # fmt: skip

# What PostgreSQL and UTF-8 cannot carry, alone or inside an otherwise good value.
UNSTORABLE = ["\x00", "\ud800", "\udfff", "\ud83d", "\udc00"]
hostile = st.builds(
    lambda before, bad, after: before + bad + after,
    st.sampled_from(["", "a", "general", "websocket", "chat", "lookup", "call-1"]),
    st.sampled_from(UNSTORABLE),
    st.sampled_from(["", "x"]),
)
# Any code point, surrogates and controls included (Hypothesis leaves surrogates out unless
# told), the strings above, and strings of each limit's length.
texts = weighted(
    (1, hostile),
    (1, st.text(st.characters(exclude_categories=()), max_size=24)),
    (1, st.sampled_from(SPECIAL_TEXT)),
    (1, st.builds(lambda n, c: c * n, st.sampled_from(LENGTHS), st.sampled_from(FILLERS))),
)
# What goes in a URL (path segments, query parameters): the same, short enough for a URL.
url_texts = weighted(
    (1, hostile),
    (1, st.text(st.characters(exclude_categories=()), max_size=24)),
    (1, st.sampled_from(SPECIAL_TEXT)),
    (
        1,
        st.builds(
            lambda n, c: c * n,
            st.sampled_from([n for n in LENGTHS if n <= 257]),
            st.sampled_from(FILLERS),
        ),
    ),
)
numbers = weighted(
    (1, st.integers()),
    (1, st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**30, 43200, 43201])),
    (1, st.floats(allow_nan=False, allow_infinity=False)),
)
scalars = weighted((1, st.none()), (1, st.booleans()), (2, numbers), (3, texts))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=10,
)


def _nested(depth: int, kind: str, leaf):
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


# Nesting at and past the 32 levels stored JSON may have, and far past it (the parser takes
# a few hundred; json.dumps in this process is the bound).
deep_values = st.builds(
    _nested, st.sampled_from([31, 32, 33, 100, 400]), st.sampled_from(["list", "dict"]), scalars
)
values = weighted((2, texts), (3, json_values), (1, deep_values))

RAW_BODIES = [
    b"", b"{", b'{"a":', b"null", b"[]", b"0", b'"x"', b"\xff\xfe", b"\x00", b"{}" * 3,
    b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e400}', b'"\\ud800"', b'{"\\u0000": 1}',
    b"[" * 5000 + b"]" * 5000, b'{"a": "\x01"}', b"\xed\xa0\x80", b"a=1&b=%00",
]  # fmt: skip
raw_bodies = weighted((1, st.sampled_from(RAW_BODIES)), (1, st.binary(max_size=48)))


# --- Mutations ----------------------------------------------------------------------------


def mutations(fields: tuple[str, ...]):
    """Edits of a JSON object: set a known key (often to unstorable text) or a new one to any
    value, delete a key, set a value somewhere inside, or add a key somewhere inside (`deep`,
    `deep-key`: the integers choose a child at each level)."""
    keys = st.sampled_from(fields) if fields else texts
    path = st.lists(st.integers(0, 7), min_size=1, max_size=5)
    return weighted(
        (2, st.tuples(st.just("set"), keys, hostile)),
        (2, st.tuples(st.just("set"), keys, values)),
        (1, st.tuples(st.just("set"), texts, values)),
        (1, st.tuples(st.just("del"), keys)),
        (2, st.tuples(st.just("deep"), path, weighted((1, hostile), (1, values)))),
        (1, st.tuples(st.just("deep-key"), path, texts, values)),
    )


def apply(body, ops):
    """`body` (a fresh copy) with the edits `ops` (from mutations()) applied."""
    body = json.loads(json.dumps(body))
    for op in ops:
        if not isinstance(body, dict):
            break
        if op[0] == "set":
            body[op[1]] = op[2]
        elif op[0] == "del":
            body.pop(op[1], None)
        else:
            holder, key, node = None, None, body
            for choice in op[1]:
                if isinstance(node, dict) and node:
                    key = list(node)[choice % len(node)]
                elif isinstance(node, list) and node:
                    key = choice % len(node)
                else:
                    break
                holder, node = node, node[key]
            if op[0] == "deep" and holder is not None:
                holder[key] = op[2]
            elif op[0] == "deep-key":
                target = node if isinstance(node, dict) else holder
                if isinstance(target, dict):
                    target[op[2]] = op[3]
    return body


def body_plans(fields: tuple[str, ...]):
    """How a body is sent: edited (most often), replaced by any JSON value, or raw bytes."""
    edited = st.lists(mutations(fields), min_size=1, max_size=3).map(lambda ops: ("ops", ops))
    return weighted(
        (1, st.just(("ops", []))),
        (12, edited),
        (1, values.map(lambda v: ("replace", v))),
        (1, raw_bodies.map(lambda b: ("raw", b))),
    )


JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
CONTENT_TYPES = [JSON] * 12 + [
    FORM,
    "text/plain",
    "application/json; charset=latin-1",
    "application/json; charset=bogus",
    "multipart/form-data",
    "",
]
AUTHS = ["good"] * 14 + ["none", "garbage", "swap", "basic", "basic-bad", "two-parts", "mangled"]
# A credential with one character replaced by a few printable ones (what a header can carry).
mangles = st.tuples(
    st.integers(0, 400), st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=3)
)
ACCEPTS = [None] * 10 + ["text/html", "application/xml", "*/*", "application/json; indent=4"]
METHODS = [None] * 16 + ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def segment(text: str) -> str:
    """`text` as one path segment, as a client would percent-encode it (a lone surrogate as
    its UTF-8 bytes, which no decoder takes)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def query_string(pairs) -> str:
    return urlencode(
        [(k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass")) for k, v in pairs]
    )


# --- Endpoints ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One (method, path) of the API. `path` names World attributes in braces; `body` builds a
    valid body from the World; `fields` are the keys mutations favour; `family` is the error
    format every answer must have."""

    name: str
    method: str
    path: str
    family: str  # "signalwire" | "vatel" | "webcall" | "drf"
    auth: str = "api"  # "api" (API key) | "chat" (chat token)
    body: Callable | None = None
    fields: tuple[str, ...] = ()
    query: tuple[str, ...] = ()
    empty_200: bool = False  # RFC 7009's revocation answers 200 with no body

    def path_params(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]


def _rw(world):
    return {world.channel: {"read": True, "write": True}}


ENDPOINTS = [
    Endpoint("chat-tokens", "POST", "/api/chat/tokens", "signalwire",
             body=lambda w: {"ttl": 60, "channels": _rw(w), "member_id": "m1", "state": {"a": 1}},
             fields=("ttl", "channels", "member_id", "state")),
    Endpoint("fabric-addresses", "GET", "/api/fabric/addresses", "signalwire", auth="chat",
             query=("name",)),
    Endpoint("fabric-address", "GET", "/api/fabric/addresses/{address_id}", "signalwire",
             auth="chat"),
    Endpoint("fabric-history", "GET", "/api/fabric/conversations/{address_id}/messages",
             "signalwire", auth="chat", query=("page_size", "after", "before")),
    Endpoint("fabric-send", "POST", "/api/fabric/messages", "signalwire", auth="chat",
             body=lambda w: {"conversation_id": w.address_id, "text": "hi", "group_id": "g",
                             "metadata": {"k": "v"}, "details": {"d": [1]}},
             fields=("conversation_id", "text", "group_id", "metadata", "details")),
    Endpoint("fabric-join", "POST", "/api/fabric/conversations/join", "signalwire",
             auth="chat", body=lambda w: {"conversation_id": w.address_id},
             fields=("conversation_id",)),
    Endpoint("addresses", "GET", "/api/v1/addresses", "drf",
             query=("name", "cursor", "page_size")),
    Endpoint("address-create", "POST", "/api/v1/addresses", "drf",
             body=lambda w: {"name": w.unique("room"), "display_name": "Room"},
             fields=("name", "display_name")),
    Endpoint("address", "GET", "/api/v1/addresses/{address_id}", "drf"),
    Endpoint("address-patch", "PATCH", "/api/v1/addresses/{address_id}", "drf",
             body=lambda w: {"display_name": "Lobby"}, fields=("display_name", "name")),
    Endpoint("address-put", "PUT", "/api/v1/addresses/{address_id}", "drf",
             body=lambda w: {"name": w.channel, "display_name": "Lobby"},
             fields=("display_name", "name")),
    Endpoint("address-delete", "DELETE", "/api/v1/addresses/{fresh_address_id}", "drf"),
    Endpoint("conversations", "GET", "/api/v1/conversations", "drf",
             query=("cursor", "page_size")),
    Endpoint("conversation", "GET", "/api/v1/conversations/{address_id}", "drf"),
    Endpoint("messages", "GET", "/api/v1/conversations/{address_id}/messages", "drf",
             query=("page_size", "before", "after")),
    Endpoint("message-create", "POST", "/api/v1/conversations/{address_id}/messages", "drf",
             body=lambda w: {"text": "hi", "user_id": "u1", "user_name": "U",
                             "metadata": {"k": 1}, "details": {}, "subtype": "chat"},
             fields=("text", "user_id", "user_name", "metadata", "details", "subtype")),
    Endpoint("members", "GET", "/api/v1/conversations/{address_id}/members", "drf",
             query=("cursor", "page_size")),
    Endpoint("session-token", "POST", "/v1/session-token", "vatel",
             body=lambda w: {"agent_id": w.agent_id, "version_id": w.version_id,
                             "transport": "webrtc", "prompt": "P", "first_message": "F"},
             fields=("agent_id", "version_id", "transport", "prompt", "first_message")),
    Endpoint("web-call", "POST", "/web_call/get_token", "webcall",
             body=lambda w: {"assistant_id": w.assistant_id, "metadata": {"name": "Ada"}},
             fields=("assistant_id", "metadata")),
    Endpoint("token-source", "POST", "/api/v1/livekit/token-source", "drf",
             body=lambda w: {"room_name": "r", "participant_identity": "i",
                             "participant_name": "n", "participant_metadata": "m",
                             "participant_attributes": {"a": "b"},
                             "room_config": {"agents": [{"agentName": "demo-agent",
                                                         "metadata": "x"}]}},
             fields=("room_name", "participant_identity", "participant_name",
                     "participant_metadata", "participant_attributes", "room_config")),
    Endpoint("session-create", "POST", "/api/v1/sessions", "drf",
             body=lambda w: {"call_id": w.unique("call"), "agent_id": w.agent_id,
                             "metadata": {"a": 1}},
             fields=("call_id", "agent_id", "metadata")),
    Endpoint("session", "GET", "/api/v1/sessions/{call_id}", "drf"),
    Endpoint("session-end", "POST", "/api/v1/sessions/{fresh_call_id}/end", "drf"),
    Endpoint("metadata", "GET", "/api/v1/sessions/{call_id}/metadata", "drf"),
    Endpoint("metadata-patch", "PATCH", "/api/v1/sessions/{call_id}/metadata", "drf",
             body=lambda w: {"k": "v", "n": 1}, fields=("k", "n")),
    Endpoint("metadata-put", "PUT", "/api/v1/sessions/{call_id}/metadata", "drf",
             body=lambda w: {"k": "v"}, fields=("k",)),
    Endpoint("metadata-delete", "DELETE", "/api/v1/sessions/{fresh_call_id}/metadata", "drf"),
    Endpoint("metadata-key-delete", "DELETE", "/api/v1/sessions/{call_id}/metadata/{key}",
             "drf"),
    Endpoint("tool-token", "POST", "/api/v1/sessions/{call_id}/tool-tokens", "drf",
             body=lambda w: {"function": "lookup", "ttl": 60, "max_uses": 3},
             fields=("function", "ttl", "max_uses")),
    Endpoint("tool-validate", "POST", "/api/v1/tool-tokens/validate", "drf",
             body=lambda w: {"call_id": w.call_id, "function": "lookup", "token": w.tool_token},
             fields=("call_id", "function", "token")),
    Endpoint("tool-debug", "POST", "/api/v1/tool-tokens/debug", "drf",
             body=lambda w: {"token": w.tool_token}, fields=("token",)),
    Endpoint("tool-secret-rotate", "POST", "/api/v1/tool-secret/rotate", "drf",
             body=lambda w: {}),
    Endpoint("introspect", "POST", "/api/v1/tokens/introspect", "drf",
             body=lambda w: {"token": w.chat_token, "token_type_hint": "access_token"},
             fields=("token", "token_type_hint")),
    Endpoint("revoke", "POST", "/api/v1/tokens/revoke", "drf",
             body=lambda w: {"token": w.spare_token}, fields=("token", "token_type_hint"),
             empty_200=True),
]  # fmt: skip


def http_plans(endpoint: Endpoint):
    params = endpoint.path_params()
    return st.fixed_dictionaries(
        {
            "body": body_plans(endpoint.fields) if endpoint.body else st.just(None),
            "query": st.lists(
                st.tuples(st.sampled_from((*endpoint.query, "x")) | url_texts, url_texts),
                max_size=2,
            ),
            "path": (
                st.lists(st.tuples(st.sampled_from(params), url_texts), max_size=1)
                if params
                else st.just([])
            ),
            "content_type": st.sampled_from(CONTENT_TYPES),
            "auth": st.sampled_from(AUTHS),
            "mangle": mangles,
            "accept": st.sampled_from(ACCEPTS),
            "method": st.sampled_from(METHODS),
        }
    )


# --- Requests and answers -----------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str  # percent-encoded, with its query string
    body: bytes | None
    headers: dict


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def build_request(endpoint: Endpoint, world, plan: dict) -> Request:
    """The request `plan` makes of `endpoint`'s valid one."""
    method = plan["method"] or endpoint.method
    segments = {name: segment(str(world.resolve(name))) for name in endpoint.path_params()}
    for name, text in plan["path"]:
        segments[name] = segment(text)
    path = endpoint.path.format(**segments)
    if plan["query"]:
        path += "?" + query_string(plan["query"])

    headers = {}
    good = world.api_key if endpoint.auth == "api" else world.chat_token
    other = world.chat_token if endpoint.auth == "api" else world.api_key
    auth = {
        "good": f"Bearer {good}",
        "none": None,
        "garbage": "Bearer not-a-token",
        "swap": f"Bearer {other}",
        "basic": _basic(world.project_id, world.api_key),
        "basic-bad": "Basic !!!",
        "two-parts": f"Bearer {good} extra",
        "mangled": f"Bearer {_mangled(good, *plan['mangle'])}",
    }[plan["auth"]]
    if auth is not None:
        headers["Authorization"] = auth
    if plan["accept"] is not None:
        headers["Accept"] = plan["accept"]

    body = None
    if plan["body"] is not None:
        kind, detail = plan["body"]
        content_type = plan["content_type"]
        if kind == "raw":
            body = detail
        else:
            value = apply(endpoint.body(world), detail) if kind == "ops" else detail
            if content_type == FORM and isinstance(value, dict):
                body = query_string((str(k), _form_value(v)) for k, v in value.items()).encode()
            else:
                # Escaped as a client's JSON encoder escapes it: a lone surrogate as \ud800.
                body = json.dumps(value).encode()
        if content_type:
            headers["Content-Type"] = content_type
    return Request(method=method, path=path, body=body, headers=headers)


def _mangled(credential: str, index: int, text: str) -> str:
    index %= len(credential)
    return credential[:index] + text + credential[index + 1 :]


def _form_value(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def check_answer(endpoint: Endpoint, answer: Answer) -> None:
    """Whatever was sent: not a 5xx, JSON (or an empty 204), in the endpoint's error format."""
    assert answer.status < 500, f"{answer.status}: {answer.body[:300]!r}"
    if answer.status == 204:
        assert answer.body == b"", answer.body[:200]
        return
    if answer.status == 200 and endpoint.empty_200 and answer.body == b"":
        return
    assert answer.content_type.startswith("application/json"), (
        answer.status,
        answer.content_type,
        answer.body[:200],
    )
    body = json.loads(answer.body)
    FORMATS[endpoint.family](answer.status, body)


def _signalwire(status, body):
    if status == 401:
        assert body == {"error": "Unauthorized"}, body
    elif status >= 400:
        assert set(body) == {"errors"} and body["errors"], body
        for error in body["errors"]:
            assert set(error) == {"type", "code", "message", "attribute", "url"}, error
            assert isinstance(error["message"], str) and error["message"], error
            assert error["attribute"] is None or isinstance(error["attribute"], str), error
    else:
        assert isinstance(body, dict), body


def _vatel(status, body):
    if status >= 400:
        assert set(body) == {"error"} and isinstance(body["error"], str), body
    else:
        assert status == 200 and isinstance(body.get("token"), str), body


def _web_call(status, body):
    assert set(body) == {"success", "message", "data"}, body
    assert body["success"] is (status == 200) and isinstance(body["message"], str), body
    if status != 200:
        assert body["data"] is None, body


def _drf_messages(value) -> bool:
    if isinstance(value, list):
        return bool(value) and all(
            isinstance(item, str) or (isinstance(item, dict) and _drf_messages(item))
            for item in value
        )
    if isinstance(value, dict):
        return all(isinstance(k, str) and _drf_messages(v) for k, v in value.items())
    return False


def _drf(status, body):
    if status >= 400:
        assert isinstance(body, dict) and body, body
        if "detail" in body:
            assert isinstance(body["detail"], str), body
        else:
            assert _drf_messages(body), body


FORMATS = {"signalwire": _signalwire, "vatel": _vatel, "webcall": _web_call, "drf": _drf}


# --- The world ----------------------------------------------------------------------------


@dataclass
class World:
    """Real objects of one project, made through the API of the server under test (`send`),
    that valid requests name. `fresh_*` path parameters are made anew for each case (a case
    may delete or end what it names)."""

    send: Callable[[Request], Answer]
    project_id: str
    api_key: str
    agent_id: str
    version_id: str
    assistant_id: str
    channel: str = ""
    address_id: str = ""
    chat_token: str = ""
    spare_token: str = ""
    relay_member: str = "fuzzer"
    call_id: str = ""
    tool_token: str = ""
    key: str = "k"
    _counter: itertools.count = field(default_factory=itertools.count)

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{os.getpid()}-{next(self._counter)}"

    def call(self, method, path, body=None, *, token=None) -> dict:
        headers = {"Authorization": f"Bearer {token or self.api_key}"}
        if body is not None:
            headers["Content-Type"] = JSON
            body = json.dumps(body).encode()
        answer = self.send(Request(method, path, body, headers))
        assert answer.status in (200, 201), (path, answer.status, answer.body[:300])
        return json.loads(answer.body)

    def chat_token_for(self, member: str, channels: dict | None = None) -> str:
        body = {"ttl": 30, "channels": channels or {self.channel: {"read": True, "write": True}}}
        return self.call("POST", "/api/chat/tokens", {**body, "member_id": member})["token"]

    def setup(self) -> "World":
        self.channel = self.unique("fuzz")
        address = self.call("POST", "/api/v1/addresses", {"name": self.channel})
        self.address_id = address["id"]
        self.chat_token = self.chat_token_for("m1")
        self.spare_token = self.chat_token_for("m2")
        self.call_id = self.fresh_call_id()
        self.call("PATCH", f"/api/v1/sessions/{self.call_id}/metadata", {"k": 1})
        issued = self.call(
            "POST", f"/api/v1/sessions/{self.call_id}/tool-tokens", {"function": "lookup"}
        )
        self.tool_token = issued["token"]
        return self

    def fresh_call_id(self) -> str:
        return self.call("POST", "/api/v1/sessions", {"agent_id": self.agent_id})["call_id"]

    def fresh_address_id(self) -> str:
        return self.call("POST", "/api/v1/addresses", {"name": self.unique("gone")})["id"]

    def resolve(self, name: str) -> str:
        if name.startswith("fresh_"):
            return getattr(self, name)()
        return getattr(self, name)
