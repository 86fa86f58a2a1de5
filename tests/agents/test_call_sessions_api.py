"""The call-session REST API (/api/v1/sessions…, /api/v1/tool-tokens/…) over real HTTP
(live_server): shapes, limits at N and N+1, metadata semantics, tenancy, and error formats."""

import json
import uuid

import pytest
from signalwire.core.security.session_manager import SessionManager as SdkSessionManager

from agents.models import Agent, CallSession, ToolToken
from tokens.models import IssuedToken

# Through real HTTP: `api` and `client_for` talk to live_server.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(live_api):
    return live_api


@pytest.fixture
def client_for(live_client_for):
    return live_client_for


def post(api, url, body):
    return api.post(url, data=json.dumps(body), content_type="application/json")


def send(api, method, url, body):
    return getattr(api, method)(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def made(api):
    response = post(api, "/api/v1/sessions", {"call_id": "call-1", "metadata": {"a": 1}})
    assert response.status_code == 201, response.content
    return response.json()


def sized(n: int) -> dict:
    """Metadata whose compact JSON is exactly n characters."""
    value = {"k": "x" * (n - len('{"k":""}'))}
    assert len(json.dumps(value, separators=(",", ":"), ensure_ascii=False)) == n
    return value


# --- Sessions -----------------------------------------------------------------------------


def test_create_with_and_without_call_id(api, made):
    assert made["call_id"] == "call-1"
    assert made["metadata"] == {"a": 1} and made["status"] == "open"
    assert made["agent_id"] is None and made["ended_at"] is None
    response = post(api, "/api/v1/sessions", {})
    assert response.status_code == 201
    generated = response.json()["call_id"]
    # What the SDK's create_session() makes: secrets.token_urlsafe(16).
    assert len(generated) == 22 and set(generated) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    )
    assert api.get(f"/api/v1/sessions/{generated}").json()["call_id"] == generated


def test_create_twice_is_a_conflict(api, made):
    response = post(api, "/api/v1/sessions", {"call_id": "call-1"})
    assert response.status_code == 409
    assert "detail" in response.json()
    assert CallSession.objects.count() == 1


def test_create_with_agent(api, project, other_project_and_key):
    agent = Agent.objects.create(project=project, name="a", dispatch_name="a")
    foreign = Agent.objects.create(project=other_project_and_key[0], name="b", dispatch_name="b")
    response = post(api, "/api/v1/sessions", {"agent_id": str(agent.pk)})
    assert response.status_code == 201 and response.json()["agent_id"] == str(agent.pk)
    for agent_id in (str(foreign.pk), str(uuid.uuid4()), "nope"):
        response = post(api, "/api/v1/sessions", {"agent_id": agent_id})
        assert response.status_code == 400 and "agent_id" in response.json()


@pytest.mark.parametrize(
    ("call_id", "ok"),
    [
        ("c" * 256, True),
        ("c" * 257, False),
        ("root.2.3", True),
        ("a:b@c~d_e-f", True),
        ("a/b", False),
        ("a b", False),
        ("..", False),
        ("", False),
        ("é", False),
        (12, False),
    ],
)
def test_call_id_rules(api, call_id, ok):
    response = post(api, "/api/v1/sessions", {"call_id": call_id})
    assert response.status_code == (201 if ok else 400), response.content
    if ok:
        got = api.get(f"/api/v1/sessions/{call_id}")
        assert got.status_code == 200 and got.json()["call_id"] == call_id
    else:
        assert "call_id" in response.json()
        assert not CallSession.objects.exists()


@pytest.mark.parametrize(
    ("metadata", "ok"),
    [
        (sized(16384), True),
        (sized(16385), False),
        ({"k" * 256: 1}, True),
        ({"k" * 257: 1}, False),
        ("not an object", False),
        ([1, 2], False),
        ({"a": "nul\x00"}, False),
    ],
)
def test_metadata_limits_on_create(api, metadata, ok):
    response = post(api, "/api/v1/sessions", {"metadata": metadata})
    assert response.status_code == (201 if ok else 400), response.content
    if not ok:
        assert "metadata" in response.json()
        assert not CallSession.objects.exists()


def nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_metadata_depth_limit(api):
    assert post(api, "/api/v1/sessions", {"metadata": nested(32)}).status_code == 201
    assert post(api, "/api/v1/sessions", {"metadata": nested(33)}).status_code == 400


def test_malformed_json_and_wrong_content_type(api):
    response = api.post("/api/v1/sessions", data="{nope", content_type="application/json")
    assert response.status_code == 400 and "detail" in response.json()
    response = api.post(
        "/api/v1/sessions", data="call_id=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415


def test_auth_required(client_for):
    anonymous = client_for()
    for url in ("/api/v1/sessions", "/api/v1/tool-tokens/validate", "/api/v1/tool-tokens/debug"):
        assert post(anonymous, url, {}).status_code == 401
    assert client_for("rk_wrong").get("/api/v1/sessions/x/metadata").status_code == 401


# --- Metadata -----------------------------------------------------------------------------


def test_metadata_merge_replace_delete(api, made):
    url = "/api/v1/sessions/call-1/metadata"
    assert api.get(url).json() == {"a": 1}
    assert send(api, "patch", url, {"b": {"c": 2}}).json() == {"a": 1, "b": {"c": 2}}
    assert send(api, "patch", url, {"a": None}).json() == {"a": None, "b": {"c": 2}}
    assert send(api, "put", url, {"z": [1]}).json() == {"z": [1]}
    assert api.get(url).json() == {"z": [1]}
    assert api.delete(f"{url}/z").status_code == 204
    assert api.delete(f"{url}/z").status_code == 404
    assert api.get(url).json() == {}
    send(api, "put", url, {"x": 1, "y": 2})
    assert api.delete(url).status_code == 204
    assert api.get(url).json() == {}


def test_merged_metadata_is_bounded(api, made):
    url = "/api/v1/sessions/call-1/metadata"
    # {"a":1} is 7 characters; the merged object must stay within the limit.
    big = sized(16384 - len(',"a":1'))
    response = send(api, "patch", url, big)
    assert response.status_code == 200, response.content
    response = send(api, "patch", url, {"b": 1})
    assert response.status_code == 400 and "metadata" in response.json()
    assert len(api.get(url).json()) == 2  # unchanged
    assert send(api, "put", url, sized(16384)).status_code == 200
    assert send(api, "put", url, sized(16385)).status_code == 400


def test_an_empty_body_never_clears_metadata(api, made):
    url = "/api/v1/sessions/call-1/metadata"
    for method in ("PUT", "PATCH"):
        for headers in ({"Content-Type": "application/json"}, {}):
            response = api.client.request(method, url, content=b"", headers=headers)
            assert response.status_code == 400, (method, headers)
            assert response.json() == {"metadata": ["Must be a JSON object."]}
    assert api.get(url).json() == {"a": 1}
    assert send(api, "put", url, {}).json() == {}  # an explicit empty object replaces


def test_metadata_body_must_be_an_object(api, made):
    url = "/api/v1/sessions/call-1/metadata"
    for body in ([1], "x", 3, None):
        response = send(api, "patch", url, body)
        assert response.status_code == 400 and "metadata" in response.json()


def test_metadata_of_an_ended_session_is_read_only(api, made):
    assert api.post("/api/v1/sessions/call-1/end").status_code == 200
    url = "/api/v1/sessions/call-1/metadata"
    assert api.get(url).json() == {"a": 1}
    for method in ("patch", "put"):
        assert send(api, method, url, {"b": 1}).status_code == 409
    assert api.delete(url).status_code == 409
    assert api.delete(f"{url}/a").status_code == 409


# --- Tenancy ------------------------------------------------------------------------------


def test_another_projects_session_is_a_404_like_an_unknown_one(
    api, made, client_for, other_project_and_key
):
    other = client_for(other_project_and_key[1])
    token = post(api, "/api/v1/sessions/call-1/tool-tokens", {"function": "fn"}).json()["token"]
    for call_id in ("call-1", "no-such-call"):
        base = f"/api/v1/sessions/{call_id}"
        answers = [
            other.get(base),
            other.get(f"{base}/metadata"),
            send(other, "patch", f"{base}/metadata", {"x": 1}),
            send(other, "put", f"{base}/metadata", {"x": 1}),
            other.delete(f"{base}/metadata"),
            other.delete(f"{base}/metadata/a"),
            post(other, f"{base}/tool-tokens", {"function": "fn"}),
            other.post(f"{base}/end"),
        ]
        for response in answers:
            assert response.status_code == 404
            assert response.json() == {"detail": "Not found."}
    assert api.get("/api/v1/sessions/call-1/metadata").json() == {"a": 1}
    assert api.get("/api/v1/sessions/call-1").json()["status"] == "open"
    # The other project's validate sees a token signed with someone else's secret.
    body = {"call_id": "call-1", "function": "fn", "token": token}
    response = post(other, "/api/v1/tool-tokens/validate", body)
    assert response.json() == {"valid": False, "reason": "bad_signature"}
    debug = post(other, "/api/v1/tool-tokens/debug", {"token": token}).json()["roomkey"]
    assert debug["valid"] is False and debug["issued_by_roomkey"] is False
    # The foundation's introspection and revocation: another project's token is inactive to
    # it, and its revocation request changes nothing (RFC 7009 answers 200 either way).
    introspect = post(other, "/api/v1/tokens/introspect", {"token": token})
    assert introspect.json() == {"active": False}
    assert post(other, "/api/v1/tokens/revoke", {"token": token}).status_code == 200
    assert post(api, "/api/v1/tokens/introspect", {"token": token}).json()["active"] is True
    response = post(api, "/api/v1/tool-tokens/validate", body)
    assert response.json() == {"valid": True, "reason": None}


# --- Tool tokens --------------------------------------------------------------------------


def test_issue_tool_token(api, made, secret):
    response = post(api, "/api/v1/sessions/call-1/tool-tokens", {"function": "fn", "max_uses": 2})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"token", "expires_at", "jti", "call_id", "function", "max_uses"}
    assert body["max_uses"] == 2 and body["call_id"] == "call-1"
    assert SdkSessionManager(secret_key=secret).validate_token("call-1", "fn", body["token"])
    assert IssuedToken.objects.get(pk=body["jti"]).kind == "tool"


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"function": "f" * 64}, True),
        ({"function": "f" * 65}, False),
        ({"function": "a.b"}, False),
        ({}, False),
        ({"function": "fn", "ttl": 1}, True),
        ({"function": "fn", "ttl": 0}, False),
        ({"function": "fn", "ttl": 86400}, True),
        ({"function": "fn", "ttl": 86401}, False),
        ({"function": "fn", "ttl": "60"}, False),
        ({"function": "fn", "max_uses": 1}, True),
        ({"function": "fn", "max_uses": 0}, False),
        ({"function": "fn", "max_uses": 1000000}, True),
        ({"function": "fn", "max_uses": 1000001}, False),
        ({"function": "fn", "max_uses": None}, True),
        ({"function": "fn", "max_uses": 1.5}, False),
    ],
)
def test_tool_token_request_limits(api, made, body, ok):
    response = post(api, "/api/v1/sessions/call-1/tool-tokens", body)
    assert response.status_code == (201 if ok else 400), response.content
    if not ok:
        assert not ToolToken.objects.exists() and not IssuedToken.objects.exists()


def test_no_tokens_for_an_ended_session(api, made):
    api.post("/api/v1/sessions/call-1/end")
    response = post(api, "/api/v1/sessions/call-1/tool-tokens", {"function": "fn"})
    assert response.status_code == 409 and "detail" in response.json()


def test_end_is_idempotent_and_revokes(api, made):
    token = post(api, "/api/v1/sessions/call-1/tool-tokens", {"function": "fn"}).json()
    first = api.post("/api/v1/sessions/call-1/end").json()
    second = api.post("/api/v1/sessions/call-1/end").json()
    assert first["status"] == second["status"] == "ended"
    assert first["ended_at"] == second["ended_at"]
    assert IssuedToken.objects.get(pk=token["jti"]).revoked_at is not None


GARBAGE = ["", "x", "not base64!", "YWJj", "x" * 10240, None, 12, ["t"], {"t": 1}, "=" * 8]


@pytest.mark.parametrize("token", GARBAGE, ids=range(len(GARBAGE)))
def test_validate_garbage_is_never_an_error(api, made, token):
    response = post(
        api, "/api/v1/tool-tokens/validate", {"call_id": "call-1", "function": "fn", "token": token}
    )
    assert response.status_code == 200
    assert response.json() == {"valid": False, "reason": "malformed"}


def test_validate_reasons_over_the_api(api, made):
    def validate(token, **kw):
        body = {"call_id": "call-1", "function": "fn", "token": token, **kw}
        return post(api, "/api/v1/tool-tokens/validate", body).json()

    once = post(api, "/api/v1/sessions/call-1/tool-tokens", {"function": "fn", "max_uses": 1})
    once = once.json()["token"]
    assert validate(once, function="other") == {"valid": False, "reason": "wrong_function"}
    assert validate(once, call_id="call-2") == {"valid": False, "reason": "wrong_call"}
    assert validate(once) == {"valid": True, "reason": None}
    assert validate(once) == {"valid": False, "reason": "used_up"}


def test_validate_call_id_and_function_limits_at_n_and_n_plus_1(api, made):
    for field in ("call_id", "function"):
        body = {"call_id": "call-1", "function": "fn", "token": "x", field: "c" * 1024}
        answer = post(api, "/api/v1/tool-tokens/validate", body)
        assert answer.status_code == 200 and answer.json()["valid"] is False
        body[field] = "c" * 1025
        answer = post(api, "/api/v1/tool-tokens/validate", body)
        assert answer.status_code == 400 and set(answer.json()) == {field}


def test_validate_requires_call_id_and_function(api):
    response = post(api, "/api/v1/tool-tokens/validate", {"token": "x"})
    assert response.status_code == 400
    assert set(response.json()) == {"call_id", "function"}


def test_debug_endpoint(api, made):
    token = post(api, "/api/v1/sessions/call-1/tool-tokens", {"function": "fn"}).json()["token"]
    body = post(api, "/api/v1/tool-tokens/debug", {"token": token}).json()
    assert body["valid_format"] is True
    assert body["components"]["call_id"] == "call-1" and body["components"]["function"] == "fn"
    assert body["status"]["is_expired"] is False
    assert body["roomkey"]["valid"] is True and body["roomkey"]["issued_by_roomkey"] is True
    for garbage in ("", "YWJj", None, 5):
        response = post(api, "/api/v1/tool-tokens/debug", {"token": garbage})
        assert response.status_code == 200 and response.json()["valid_format"] is False


def test_rotate_secret_over_the_api(api, made, secret):
    response = api.post("/api/v1/tool-secret/rotate")
    assert response.status_code == 201
    body = response.json()
    assert body["secret"] != secret and len(body["secret"]) == 64
    assert body["previous_valid_until"] is not None
    token = post(api, "/api/v1/sessions/call-1/tool-tokens", {"function": "fn"}).json()["token"]
    assert SdkSessionManager(secret_key=body["secret"]).validate_token("call-1", "fn", token)
