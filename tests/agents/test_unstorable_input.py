"""NUL and lone surrogates on the agents' endpoints, over real HTTP (live_server): refused at the
edge in each contract's own format, never a 500, never an error message that echoes them.
The path tests matter most on PostgreSQL, which cannot take a NUL in a query parameter."""

import json

import httpx
import pytest

from agents import services
from agents.models import CallSession, VoiceSession
from tokens.inputs import UNSTORABLE_TEXT
from tokens.models import IssuedToken

pytestmark = pytest.mark.django_db(transaction=True)

SURROGATE, NUL = "\ud800", "a\x00b"


@pytest.fixture
def send(live_server, api_key):
    """send(method, path, body=None) over real HTTP with the project's API key; the body is
    encoded by json.dumps, which escapes a lone surrogate as a client's encoder does."""

    def call(method, path, body=None):
        headers = {"Authorization": f"Bearer {api_key}"}
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return httpx.request(method, live_server.url + path, content=content, headers=headers)

    return call


@pytest.mark.parametrize("transport", [SURROGATE, NUL, "web" + SURROGATE])
def test_session_token_transport(send, agent, transport):
    response = send(
        "POST", "/v1/session-token", {"agent_id": str(agent.pk), "transport": transport}
    )
    assert response.status_code == 422, response.text
    assert response.json() == {"error": f"transport: {UNSTORABLE_TEXT}"}
    assert not VoiceSession.objects.exists() and not IssuedToken.objects.exists()


def test_web_call_metadata_key(send, assistant):
    body = {"assistant_id": str(assistant.pk), "metadata": {SURROGATE: "x"}}
    response = send("POST", "/web_call/get_token", body)
    assert response.status_code == 422, response.text
    assert response.json() == {
        "success": False,
        "message": f"metadata: {UNSTORABLE_TEXT}",
        "data": None,
    }


@pytest.mark.parametrize(
    "room_config",
    [{SURROGATE: 1}, {"agents": [{"agentName": "a", NUL: "x"}]}, {"agents\x00": []}],
    ids=["key", "nested-key", "nul-key"],
)
def test_token_source_room_config_keys(send, room_config):
    response = send("POST", "/api/v1/livekit/token-source", {"room_config": room_config})
    assert response.status_code == 400, response.text
    assert response.json() == {"room_config": [UNSTORABLE_TEXT]}
    assert not IssuedToken.objects.exists()


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("POST", "/end"),
        ("GET", "/metadata"),
        ("PATCH", "/metadata"),
        ("DELETE", "/metadata"),
        ("DELETE", "/metadata/k"),
        ("POST", "/tool-tokens"),
    ],
)
@pytest.mark.parametrize(
    "call_id", ["a%00b", "%00", "a%ED%A0%80b"], ids=["nul", "only-nul", "utf8-surrogate"]
)
def test_call_id_paths(send, method, suffix, call_id):
    body = {"/tool-tokens": {"function": "f"}}.get(suffix, {"k": 1} if method == "PATCH" else None)
    response = send(method, f"/api/v1/sessions/{call_id}{suffix}", body)
    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "Not found."}


def test_metadata_key_path_with_nul(send, project):
    services.call_session_create(project=project, call_id="call-1", metadata={"k": 1})
    response = send("DELETE", "/api/v1/sessions/call-1/metadata/k%00")
    assert response.status_code == 404, response.text
    assert CallSession.objects.get().metadata == {"k": 1}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/sessions", {"call_id": "c1", "metadata": {"k": NUL}}),
        ("/api/v1/sessions", {"metadata": {SURROGATE: 1}}),
        ("/api/v1/tool-tokens/validate", {"call_id": NUL, "function": "f", "token": "x"}),
    ],
)
def test_call_session_bodies(send, path, body):
    response = send("POST", path, body)
    assert response.status_code == 400, response.text
    [(field, messages)] = response.json().items()
    assert messages == [UNSTORABLE_TEXT] and field in body
    assert not CallSession.objects.exists()


@pytest.mark.parametrize("token", [SURROGATE, NUL, "x" * 100 + SURROGATE])
@pytest.mark.parametrize("path", ["/api/v1/tool-tokens/validate", "/api/v1/tool-tokens/debug"])
def test_any_tool_token_string_is_judged_not_refused(send, project, path, token):
    services.call_session_create(project=project, call_id="call-1")
    response = send("POST", path, {"call_id": "call-1", "function": "f", "token": token})
    assert response.status_code == 200, response.text
    if path.endswith("validate"):
        assert response.json() == {"valid": False, "reason": "malformed"}
