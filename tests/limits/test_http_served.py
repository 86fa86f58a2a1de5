"""Rate limits of the HTTP APIs through real servers: every limit at N and N+1, requests
alternating between two uvicorn processes that share Redis (one process without REDIS_URL),
each refusal in its endpoint's own format with Retry-After, RateLimit-* on every answer."""

import uuid

import jwt
import pytest

from tests.limits.served import new_address

N = 3  # per API key (tests/limits/served.py LIMITS_ENV)


def alternate(clients, method, path, times, **kwargs):
    """`times` requests, round-robin over the clients (server processes)."""
    return [getattr(clients[i % len(clients)], method)(path, **kwargs) for i in range(times)]


def assert_counted_down(responses, limit=N):
    for i, response in enumerate(responses):
        assert response.status_code < 400, response.text
        assert response.headers["RateLimit-Limit"] == str(limit)
        assert response.headers["RateLimit-Remaining"] == str(limit - 1 - i)
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 60


def assert_limited(response) -> int:
    assert response.status_code == 429, response.text
    retry = int(response.headers["Retry-After"])
    assert 0 < retry <= 60
    assert response.headers["RateLimit-Remaining"] == "0"
    assert response.headers["RateLimit-Limit"]
    return retry


def signalwire_429(body, retry):
    (error,) = body["errors"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "rate_limited"
    assert f"Retry after {retry} s" in error["message"]


def vatel_429(body, retry):
    assert list(body) == ["error"]
    assert f"Retry after {retry} s" in body["error"]


def web_call_429(body, retry):
    assert body["success"] is False and body["data"] is None
    assert f"Retry after {retry} s" in body["message"]


def drf_429(body, retry):
    assert f"Retry after {retry} s" in body["detail"]
    assert body["retry_after"] == retry


def _issuance(limited, name):
    demo = limited.demo
    return {
        "chat token": ("/api/chat/tokens", {"ttl": 1, "channels": ["general"]}, signalwire_429),
        "session token": ("/v1/session-token", {"agent_id": demo["agent_id"]}, vatel_429),
        "webrtc session": (
            "/v1/session-token",
            {"agent_id": demo["agent_id"], "transport": "webrtc"},
            vatel_429,
        ),
        "web call": ("/web_call/get_token", {"assistant_id": demo["assistant_id"]}, web_call_429),
        "token source": ("/api/v1/livekit/token-source", {}, drf_429),
    }[name]


@pytest.mark.parametrize(
    "endpoint", ["chat token", "session token", "webrtc session", "web call", "token source"]
)
def test_issuance_is_limited_per_api_key_in_each_endpoints_format(limited, endpoint):
    path, body, check = _issuance(limited, endpoint)
    clients = limited.clients(new_address(), key=limited.key())
    assert_counted_down(alternate(clients, "post", path, N, json=body))
    refused = clients[-1].post(path, json=body)
    check(refused.json(), assert_limited(refused))
    assert "Token issuance is limited to 3 per minute per API key" in refused.text
    # Another key from the same address is not limited by the first key's count.
    other = limited.http(new_address(), key=limited.key())
    assert other.post(path, json=body).status_code < 400


def test_tool_tokens_and_validation_are_limited_per_key(limited):
    key = limited.key()
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    assert (
        limited.http(new_address(), key=key)
        .post("/api/v1/sessions", json={"call_id": call_id})
        .status_code
        == 201
    )
    clients = limited.clients(new_address(), key=key)
    path = f"/api/v1/sessions/{call_id}/tool-tokens"
    issued = alternate(clients, "post", path, N, json={"function": "lookup"})
    assert_counted_down(issued)
    refused = clients[0].post(path, json={"function": "lookup"})
    drf_429(refused.json(), assert_limited(refused))
    # Validation and debug share one scope, with its own count.
    token = issued[0].json()["token"]
    check = {"call_id": call_id, "function": "lookup", "token": token}
    answers = [
        clients[0].post("/api/v1/tool-tokens/validate", json=check),
        clients[-1].post("/api/v1/tool-tokens/debug", json={"token": token}),
        clients[0].post("/api/v1/tool-tokens/validate", json={**check, "token": "forged"}),
    ]
    assert_counted_down(answers)
    assert answers[0].json() == {"valid": True, "reason": None}
    refused = clients[-1].post("/api/v1/tool-tokens/validate", json={**check, "token": "x"})
    drf_429(refused.json(), assert_limited(refused))
    assert "Tool-token validation is limited" in refused.text


@pytest.mark.parametrize("scope", ["introspect", "revoke"])
def test_introspection_and_revocation_are_limited_per_key(limited, scope):
    clients = limited.clients(new_address(), key=limited.key())
    path = f"/api/v1/tokens/{scope}"
    assert_counted_down(alternate(clients, "post", path, N, data={"token": "nothing"}))
    refused = clients[-1].post(path, data={"token": "nothing"})
    drf_429(refused.json(), assert_limited(refused))


def test_the_chat_api_is_limited_per_key(limited):
    clients = limited.clients(new_address(), key=limited.key())
    assert_counted_down(alternate(clients, "get", "/api/v1/addresses", N))
    refused = clients[0].get("/api/v1/addresses")
    drf_429(refused.json(), assert_limited(refused))
    assert "The chat API is limited to 3 per minute per API key" in refused.text


def test_fabric_is_limited_per_chat_token_in_signalwires_format(limited):
    minted = limited.http(new_address(), key=limited.key()).post(
        "/api/chat/tokens", json={"ttl": 1, "channels": ["general"]}
    )
    token = minted.json()["token"]
    clients = limited.clients(new_address(), key=token)
    path = "/api/fabric/addresses?name=general"
    assert_counted_down(alternate(clients, "get", path, N))
    refused = clients[-1].get(path)
    signalwire_429(refused.json(), assert_limited(refused))
    assert "per token" in refused.text


def test_each_address_is_limited_whatever_key_it_uses(limited):
    # api: 50/min per key, 4/min per address.
    address = new_address()
    answers = [
        limited.http(address, key=limited.key(), server=i).get("/api/v1/sessions/none")
        for i in range(4)
    ]
    assert [a.status_code for a in answers] == [404] * 4
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["3", "2", "1", "0"]
    refused = limited.http(address, key=limited.key(), server=1).get("/api/v1/sessions/none")
    drf_429(refused.json(), assert_limited(refused))
    assert "This API is limited to 4 per minute per address" in refused.text
    # Another address with the same keys is not.
    assert (
        limited.http(new_address(), key=limited.key()).get("/api/v1/sessions/none").status_code
        == 404
    )


def test_a_projects_own_rate_from_the_admin_applies(limited):
    own = limited.projects["own-rate"]  # issue_rate 5/min, where the setting says 3/min
    clients = limited.clients(new_address(), key=own["key"])
    body = {"ttl": 1, "channels": ["general"]}
    answers = alternate(clients, "post", "/api/chat/tokens", 5, json=body)
    assert_counted_down(answers, limit=5)
    refused = clients[-1].post("/api/chat/tokens", json=body)
    signalwire_429(refused.json(), assert_limited(refused))


def test_failed_authentication_is_limited_per_address_before_any_key_lookup(limited):
    address = new_address()
    clients = limited.clients(address, key="rk_000000000000_" + "x" * 43)
    failed = alternate(clients, "post", "/api/chat/tokens", 3, json={})
    assert [f.status_code for f in failed] == [401] * 3
    assert [f.json() for f in failed] == [{"error": "Unauthorized"}] * 3
    # The fourth request is refused before its credentials are looked at, a valid key too,
    # on every endpoint and every process.
    key = limited.key()
    for client in limited.clients(address, key=key):
        refused = client.post("/api/chat/tokens", json={"ttl": 1, "channels": ["general"]})
        retry = assert_limited(refused)
        assert "Too many failed authentications from this address" in refused.text
        signalwire_429(refused.json(), retry)
        assert client.get("/api/v1/addresses").status_code == 429
        vatel = client.post("/v1/session-token", json={})
        vatel_429(vatel.json(), assert_limited(vatel))
    # Had the key been looked up and compared, it would have authenticated (and been marked
    # used): it was not.
    prefix = key.split("_")[1]
    used = limited.shell(
        "import json; from tokens.models import ApiKey;"
        f"print(json.dumps(ApiKey.objects.get(prefix='{prefix}').last_used_at is None))"
    )
    assert used is True
    # Missing credentials are not a failed authentication; another address is unaffected.
    fresh = new_address()
    for _ in range(4):
        assert limited.http(fresh).get("/api/v1/addresses").status_code == 401
    assert limited.http(fresh, key=key).get("/api/v1/addresses").status_code == 200


def test_call_session_quota(limited):
    project = limited.projects["call-quota"]  # max_call_sessions 2

    def create(server):
        client = limited.http(new_address(), key=project["key"], server=server)
        return client.post("/api/v1/sessions", json={})

    first, second = create(0), create(1)
    assert first.status_code == second.status_code == 201
    refused = create(0)
    assert refused.status_code == 429, refused.text
    assert refused.json() == {
        "detail": "Quota reached: this project may have at most 2 open call sessions.",
        "quota": "max_call_sessions",
        "limit": 2,
    }
    assert "Retry-After" not in refused.headers
    # Ending one frees its slot.
    call_id = first.json()["call_id"]
    ended = limited.http(new_address(), key=project["key"], server=1).post(
        f"/api/v1/sessions/{call_id}/end"
    )
    assert ended.status_code == 200
    assert create(1).status_code == 201


def test_livekit_tokens_never_outlive_the_longest_voice_session(limited):
    project = limited.projects["voice-length"]  # max_voice_session_seconds 2
    client = limited.http(new_address(), key=project["key"])
    webrtc = client.post(
        "/v1/session-token", json={"agent_id": project["agent_id"], "transport": "webrtc"}
    )
    web_call = client.post("/web_call/get_token", json={"assistant_id": project["assistant_id"]})
    for token in (webrtc.json()["token"], web_call.json()["data"]["token"]):
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["exp"] - claims["nbf"] <= 2
    # The demo project keeps the default (an hour).
    demo = limited.http(new_address(), key=limited.key()).post(
        "/v1/session-token", json={"agent_id": limited.demo["agent_id"], "transport": "webrtc"}
    )
    claims = jwt.decode(demo.json()["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["nbf"] == 3600
