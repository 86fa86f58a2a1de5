"""Every agents API family answers 404 (a path no route matches), 405 and 500 in its own JSON
format, DEBUG on or off: Vatel's under /v1/ (seed 003), the web-call envelope under
/web_call/ (seed 004), DRF's under /api/v1/ (call sessions, tool tokens, LiveKit token
source). Through the real HTTP stack (live_server)."""

import httpx
import pytest

from agents import services

pytestmark = pytest.mark.django_db(transaction=True)


def vatel(message):
    return {"error": message}


def web_call(message):
    return {"success": False, "message": message, "data": None}


def drf(message):
    return {"detail": message}


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def call(live_server, api_key):
    def send(method, path, **kwargs):
        headers = {"Authorization": f"Bearer {api_key}"}
        return httpx.request(method, live_server.url + path, headers=headers, **kwargs)

    return send


def assert_json(response, status, body):
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    assert "<html" not in response.text.lower()
    assert response.json() == body


# --- 404: a path under the family's prefix that no route matches -----------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/no-such-endpoint", vatel("Not found.")),
        ("/v1/session-token/extra", vatel("Not found.")),
        ("/v1/connection", vatel("Not found.")),  # a WebSocket path, asked over HTTP
        ("/web_call/no-such-endpoint", web_call("Not found.")),
        ("/web_call/get_token/extra", web_call("Not found.")),
        ("/api/v1/sessions/call-1/no-such-part", drf("Not found.")),
        ("/api/v1/sessions/call-1/metadata/key/extra", drf("Not found.")),
        ("/api/v1/tool-tokens/no-such-endpoint", drf("Not found.")),
        ("/api/v1/livekit/no-such-endpoint", drf("Not found.")),
    ],
)
def test_404_for_an_unroutable_path(call, debug, path, body):
    for method in ("GET", "POST"):
        assert_json(call(method, path), 404, body)


def test_404_for_an_unknown_session_in_a_routed_path(call, debug):
    assert_json(call("GET", "/api/v1/sessions/no-such-call"), 404, drf("Not found."))


# --- 405 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/session-token", vatel('Method "GET" not allowed.')),
        ("PUT", "/web_call/get_token", web_call('Method "PUT" not allowed.')),
        ("GET", "/api/v1/sessions", drf('Method "GET" not allowed.')),
        ("PUT", "/api/v1/sessions/call-1/end", drf('Method "PUT" not allowed.')),
        ("GET", "/api/v1/tool-tokens/validate", drf('Method "GET" not allowed.')),
        ("GET", "/api/v1/livekit/token-source", drf('Method "GET" not allowed.')),
        ("DELETE", "/api/v1/tool-secret/rotate", drf('Method "DELETE" not allowed.')),
    ],
)
def test_405(call, debug, session, method, path, body):
    assert_json(call(method, path), 405, body)


# --- 500: a fault inside a view (a service raising what no one expects) ----------------------


def _broken(*args, **kwargs):
    raise RuntimeError("simulated bug: this text must not reach the client")


INTERNAL = "Internal server error."


@pytest.mark.parametrize(
    ("service", "method", "path", "body", "answer"),
    [
        ("session_token_issue", "POST", "/v1/session-token", "agent", vatel(INTERNAL)),
        (
            "web_call_issue",
            "POST",
            "/web_call/get_token",
            "assistant",
            web_call("Internal error while generating the token."),
        ),
        ("call_session_create", "POST", "/api/v1/sessions", {}, drf(INTERNAL)),
        (
            "call_session_metadata_update",
            "PATCH",
            "/api/v1/sessions/call-1/metadata",
            {"a": 1},
            drf(INTERNAL),
        ),
        (
            "tool_token_validate",
            "POST",
            "/api/v1/tool-tokens/validate",
            {"call_id": "call-1", "function": "fn", "token": "x"},
            drf(INTERNAL),
        ),
        ("token_source_issue", "POST", "/api/v1/livekit/token-source", {}, drf(INTERNAL)),
        ("tool_secret_rotate", "POST", "/api/v1/tool-secret/rotate", None, drf(INTERNAL)),
    ],
)
def test_500_for_an_unexpected_exception(
    call, debug, monkeypatch, caplog, agent, assistant, session, service, method, path, body, answer
):
    if body == "agent":
        body = {"agent_id": str(agent.pk)}
    elif body == "assistant":
        body = {"assistant_id": str(assistant.pk)}
    monkeypatch.setattr(services, service, _broken)
    response = call(method, path, json=body)
    assert_json(response, 500, answer)
    assert "simulated bug" not in response.text
    assert "simulated bug" in caplog.text  # logged with its traceback for the operator
