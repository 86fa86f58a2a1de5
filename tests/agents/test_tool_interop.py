"""Tool tokens against the real signalwire-sdk SessionManager (pinned), both directions.

Roomkey's tokens validate in `SessionManager(secret_key=<project tool secret>)`, and tokens
that SDK generates with the same secret validate in Roomkey, through the service and over
real HTTP (`live_server`).
"""

import time

import httpx
import pytest
from signalwire.core.security.session_manager import SessionManager as SdkSessionManager

from agents import services

CALL_IDS = ["call-1", "root.2", "a.b.c.d.e.f", "9f1c2d3e-0000-4000-8000-123456789abc"]


@pytest.fixture
def sdk(secret):
    return SdkSessionManager(secret_key=secret)


@pytest.mark.parametrize("call_id", CALL_IDS)
def test_roomkey_token_validates_in_the_sdk(sm, sdk, call_id):
    sm.create_session(call_id)
    token = sm.create_tool_token("get_weather", call_id)
    assert sdk.validate_tool_token("get_weather", token, call_id) is True
    assert sdk.validate_token(call_id, "get_weather", token) is True
    # The SDK's own refusals hold for Roomkey's tokens.
    assert sdk.validate_token(call_id, "other_function", token) is False
    assert sdk.validate_token(call_id + "x", "get_weather", token) is False
    assert (
        SdkSessionManager(secret_key="not-the-secret").validate_token(call_id, "get_weather", token)
        is False
    )


@pytest.mark.parametrize("call_id", CALL_IDS)
def test_sdk_token_validates_in_roomkey(sm, sdk, call_id):
    sm.create_session(call_id)
    token = sdk.generate_token("get_weather", call_id)
    assert sm.validate_token(call_id, "get_weather", token) is True
    assert sm.validate_tool_token("get_weather", token, call_id) is True
    assert sm.check_token(call_id, "other_function", token).reason == "wrong_function"
    assert sm.check_token(call_id + "x", "get_weather", token).reason == "wrong_call"


def test_sdk_token_with_another_secret_is_a_bad_signature(sm):
    sm.create_session("call-1")
    token = SdkSessionManager(secret_key="some-other-secret").generate_token("fn", "call-1")
    assert sm.check_token("call-1", "fn", token).reason == "bad_signature"


def test_expired_both_ways(sm, sdk, settings):
    sm.create_session("call-1")
    expired_sdk = SdkSessionManager(token_expiry_secs=-1, secret_key=sdk.secret_key)
    sdk_token = expired_sdk.generate_token("fn", "call-1")
    assert sdk.validate_token("call-1", "fn", sdk_token) is False
    assert sm.check_token("call-1", "fn", sdk_token).reason == "expired"

    ours = sm.create_tool_token("fn", "call-1")
    later = time.time() + settings.ROOMKEY_AGENTS.get("TOOL_TOKEN_TTL", 900) + 1
    assert (
        services.tool_token_validate(
            project=sm.project, call_id="call-1", function="fn", token=ours, now=later
        ).reason
        == "expired"
    )
    assert sdk.validate_token("call-1", "fn", ours) is True  # not yet expired for either
    assert sm.validate_token("call-1", "fn", ours) is True


def test_sdk_token_needs_a_session_in_roomkey(sm, sdk):
    # The SDK is stateless; Roomkey validates only tokens of sessions it knows and that are open.
    token = sdk.generate_token("fn", "never-created")
    assert sdk.validate_token("never-created", "fn", token) is True
    assert sm.check_token("never-created", "fn", token).reason == "unknown_session"
    assert sm.activate_session("never-created") is False
    sm.create_session("never-created")
    # The SDK's legacy activate_session exists on Roomkey's too (code calling it still runs).
    assert sm.activate_session("never-created") is sdk.activate_session("never-created") is True
    assert sm.validate_token("never-created", "fn", token) is True
    sm.end_session("never-created")
    assert sm.check_token("never-created", "fn", token).reason == "session_ended"
    assert sm.activate_session("never-created") is False


def test_debug_token_has_the_sdks_shape(sm, sdk):
    sdk._debug_mode = True  # the SDK answers {"error": ...} unless its debug mode is on
    sm.create_session("root.2.long-call-id")
    for token in [
        sm.create_tool_token("fn", "root.2.long-call-id"),
        sdk.generate_token("fn", "root.2.long-call-id"),
    ]:
        ours, theirs = sm.debug_token(token), sdk.debug_token(token)
        assert ours.pop("roomkey")["valid"] is True
        for result in (ours, theirs):
            result["status"].pop("current_time")
            result["status"].pop("expires_in_seconds")
        assert ours == theirs
    for garbage in ["", "not base64!", "YWJj", "YS5i"]:
        ours, theirs = sm.debug_token(garbage), sdk.debug_token(garbage)
        assert ours["valid_format"] is theirs["valid_format"] is False
        assert ours.keys() - {"error", "parts_count"} == theirs.keys() - {"error", "parts_count"}


# --- Over HTTP ----------------------------------------------------------------------------


@pytest.fixture
def http(live_server, api_key):
    with httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
    ) as client:
        yield client


def test_over_http_both_ways(http, sdk):
    created = http.post("/api/v1/sessions", json={"call_id": "root.2"})
    assert created.status_code == 201, created.text
    issued = http.post("/api/v1/sessions/root.2/tool-tokens", json={"function": "lookup"})
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    assert sdk.validate_tool_token("lookup", token, "root.2") is True

    def validate(token, function="lookup", call_id="root.2"):
        response = http.post(
            "/api/v1/tool-tokens/validate",
            json={"call_id": call_id, "function": function, "token": token},
        )
        assert response.status_code == 200, response.text
        return response.json()

    assert validate(token) == {"valid": True, "reason": None}
    sdk_token = sdk.generate_token("lookup", "root.2")
    assert validate(sdk_token) == {"valid": True, "reason": None}
    assert validate(sdk_token, function="other") == {"valid": False, "reason": "wrong_function"}
    assert validate(sdk_token, call_id="root.3") == {"valid": False, "reason": "wrong_call"}
    wrong = SdkSessionManager(secret_key="x" * 64).generate_token("lookup", "root.2")
    assert validate(wrong) == {"valid": False, "reason": "bad_signature"}

    # Revocation through the foundation's endpoint (RFC 7009), then introspection.
    assert http.post("/api/v1/tokens/introspect", data={"token": token}).json()["active"]
    assert http.post("/api/v1/tokens/revoke", data={"token": token}).status_code == 200
    assert http.post("/api/v1/tokens/introspect", data={"token": token}).json() == {"active": False}
    assert validate(token) == {"valid": False, "reason": "revoked"}
    # The SDK cannot know: revocation is what Roomkey adds.
    assert sdk.validate_tool_token("lookup", token, "root.2") is True

    ended = http.post("/api/v1/sessions/root.2/end")
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    assert validate(sdk_token) == {"valid": False, "reason": "session_ended"}
