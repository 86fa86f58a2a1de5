"""Seed 003: POST /v1/session-token, through the real HTTP stack (live_server).

LiveKit tokens are checked with the real livekit-api TokenVerifier, claim by claim."""

import json
import uuid

import httpx
import jwt
import pytest
from livekit.api import TokenVerifier

from agents.models import LiveKitConfig, Room, VoiceSession
from agents.serializers import FIRST_MESSAGE_MAX_CHARS, PROMPT_MAX_CHARS
from tokens import services as token_services
from tokens.models import IssuedToken

URL = "/v1/session-token"


@pytest.fixture
def post(live_post):
    return live_post(URL)


def verifier(settings):
    return TokenVerifier(settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET)


# --- websocket transport --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_websocket_is_the_default_and_returns_only_a_token(post, agent, version):
    response = post({"agent_id": str(agent.pk)})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"token"}
    token = response.json()["token"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "voice-session+jwt" and header["alg"] == "HS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == "roomkey:voice-session"
    assert claims["agent_id"] == str(agent.pk) and claims["version_id"] == str(version.pk)
    session = VoiceSession.objects.get()
    assert claims["sid"] == claims["sub"] == str(session.pk)
    assert session.jti == claims["jti"] and session.status == VoiceSession.ISSUED
    assert session.prompt_override is None and session.first_message_override is None
    result = token_services.token_verify(token)
    assert result.valid and result.kind == "voice"
    assert result.row.grants["session_id"] == str(session.pk)
    assert result.row.api_key is not None and result.row.client_ip == "127.0.0.1"


@pytest.mark.django_db(transaction=True)
def test_websocket_overrides_are_kept_on_the_session(post, agent):
    response = post(
        {"agent_id": str(agent.pk), "transport": "websocket", "prompt": "P!", "first_message": ""}
    )
    assert response.status_code == 200, response.text
    session = VoiceSession.objects.get()
    assert session.prompt_override == "P!" and session.first_message_override == ""


# --- webrtc transport -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_webrtc_token_passes_livekit_verifier_field_by_field(post, agent, version, settings):
    response = post(
        {
            "agent_id": str(agent.pk),
            "version_id": str(version.pk),
            "transport": "webrtc",
            "prompt": "Be brief.",
            "first_message": "Hey!",
        }
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"token", "room", "identity", "url"}
    assert body["url"] == settings.LIVEKIT_URL == "ws://127.0.0.1:7880"
    assert body["room"].startswith(f"{agent.pk}_") and len(body["room"]) == 36 + 1 + 8
    claims = verifier(settings).verify(body["token"])
    assert claims.identity == body["identity"]
    grant = claims.video
    assert grant.room == body["room"] and grant.room_join is True
    assert grant.can_publish is True and grant.can_subscribe is True
    assert grant.can_publish_data is True
    assert grant.can_publish_sources == ["microphone"]
    for admin_grant in ("room_admin", "room_create", "room_list", "room_record", "agent"):
        assert getattr(grant, admin_grant) is None, admin_grant
    assert claims.attributes == {
        "agent_id": str(agent.pk),
        "version_id": str(version.pk),
        "prompt": "Be brief.",
        "first_message": "Hey!",
    }
    [dispatch] = claims.room_config.agents
    assert dispatch.agent_name == "support-agent"
    meta = json.loads(dispatch.metadata)
    assert meta["prompt"] == "Be brief." and meta["first_message"] == "Hey!"
    assert meta["agent_id"] == str(agent.pk) and meta["version_id"] == str(version.pk)
    # The raw claims LiveKit reads (camelCase) and the registry row.
    raw = jwt.decode(body["token"], options={"verify_signature": False})
    assert raw["iss"] == "devkey" and raw["sub"] == body["identity"] and raw["exp"] > raw["nbf"]
    row = IssuedToken.objects.get(pk=raw["jti"])
    assert (row.kind, row.subject, row.resource) == ("livekit", body["identity"], body["room"])
    assert row.grants["agent_id"] == str(agent.pk) and row.grants["dispatch"] == ["support-agent"]
    room = Room.objects.get(name=body["room"])
    assert room.agent == agent and room.version == version and room.project == agent.project


@pytest.mark.django_db(transaction=True)
def test_webrtc_without_overrides_resolves_the_active_version(post, agent, version, settings):
    response = post({"agent_id": str(agent.pk), "transport": "webrtc"})
    assert response.status_code == 200, response.text
    claims = verifier(settings).verify(response.json()["token"])
    assert claims.attributes == {"agent_id": str(agent.pk), "version_id": str(version.pk)}
    meta = json.loads(claims.room_config.agents[0].metadata)
    assert meta["prompt"] == "You are support." and meta["first_message"] == "Hi, support here."


@pytest.mark.django_db(transaction=True)
def test_project_livekit_credentials_sign_and_other_secrets_fail(
    post, agent, project, other_project, settings
):
    LiveKitConfig.objects.create(
        project=project, url="wss://a.example", api_key="APIa", api_secret="a" * 40
    )
    LiveKitConfig.objects.create(
        project=other_project, url="wss://b.example", api_key="APIb", api_secret="b" * 40
    )
    body = post({"agent_id": str(agent.pk), "transport": "webrtc"}).json()
    assert body["url"] == "wss://a.example"
    assert TokenVerifier("APIa", "a" * 40).verify(body["token"]).identity == body["identity"]
    with pytest.raises(jwt.InvalidSignatureError):
        TokenVerifier("APIa", "b" * 40).verify(body["token"])
    with pytest.raises(jwt.InvalidIssuerError):
        TokenVerifier("APIb", "a" * 40).verify(body["token"])
    with pytest.raises(jwt.InvalidSignatureError):
        verifier(settings).verify(body["token"])
    assert token_services.token_verify(body["token"]).valid


# --- errors: {"error": "<message>"} ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", [None, "rk_000000000000_" + "x" * 43, "garbage"])
def test_401(post, agent, key):
    response = post({"agent_id": str(agent.pk)}, key=key)
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid or missing API key."}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer a b", "Token abc", "Basic !!!", "Basic YTpi", b"Bearer \xe9"]
)
def test_401_for_odd_authorization_headers(post, agent, header):
    response = post({"agent_id": str(agent.pk)}, key=None, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid or missing API key."}


@pytest.mark.django_db(transaction=True)
def test_404_unknown_and_other_projects_agent_are_identical(post, other_agent_and_version):
    other_agent, _other_version = other_agent_and_version
    unknown = post({"agent_id": str(uuid.uuid4())})
    theirs = post({"agent_id": str(other_agent.pk)})
    assert unknown.status_code == theirs.status_code == 404
    assert unknown.json() == theirs.json() == {"error": "Agent not found."}
    assert not IssuedToken.objects.exists() and not VoiceSession.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_404_version_unknown_of_another_agent_or_project(
    post, project, agent, other_agent_and_version
):
    from tests.agents.conftest import make_agent

    _sibling, sibling_version = make_agent(project, name="Sibling", dispatch_name="sib")
    for version_id in (uuid.uuid4(), sibling_version.pk, other_agent_and_version[1].pk):
        response = post({"agent_id": str(agent.pk), "version_id": str(version_id)})
        assert response.status_code == 404
        assert response.json() == {"error": "Version not found."}


@pytest.mark.django_db(transaction=True)
def test_draft_version_and_agent_without_active_version_are_422(post, project, agent, draft):
    from tests.agents.conftest import make_agent

    response = post({"agent_id": str(agent.pk), "version_id": str(draft.pk)})
    assert response.status_code == 422
    assert response.json() == {
        "error": "version_id: The version is a draft; only published versions run."
    }
    bare, _ = make_agent(project, name="Bare", dispatch_name="bare", publish=False)
    response = post({"agent_id": str(bare.pk), "transport": "webrtc"})
    assert response.status_code == 422
    assert response.json() == {"error": "agent_id: The agent has no active version."}
    assert not Room.objects.exists() and not IssuedToken.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "agent_id: This field is required."),
        ({"agent_id": "nope"}, "agent_id: Must be a valid UUID string."),
        ({"agent_id": 12345}, "agent_id: Must be a valid UUID string."),
        ({"agent_id": None}, "agent_id: This field may not be null."),
        ("AGENT", "version_id: Must be a valid UUID string."),
        ("TRANSPORT", 'transport: "sip" is not a valid choice.'),
        ("PROMPT_TYPE", "prompt: Must be a string."),
        ([1, 2], "Invalid data. Expected a dictionary, but got list."),
    ],
)
def test_422_invalid_bodies(post, agent, body, message):
    if body == "AGENT":
        body = {"agent_id": str(agent.pk), "version_id": "v1"}
    elif body == "TRANSPORT":
        body = {"agent_id": str(agent.pk), "transport": "sip"}
    elif body == "PROMPT_TYPE":
        body = {"agent_id": str(agent.pk), "prompt": ["x"]}
    response = post(body)
    assert response.status_code == 422
    assert response.json() == {"error": message}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "raw", [b"{bad json", b"", b"[" * 100_000, b'{"agent_id": NaN}', "\xff".encode("latin-1")]
)
def test_422_malformed_json(post, raw):
    response = post(None, raw=raw)
    assert response.status_code == 422
    assert set(response.json()) == {"error"} and response.json()["error"]


@pytest.mark.django_db(transaction=True)
def test_wrong_content_type_and_method(post, live_server, api_key):
    response = post(None, raw=b"agent_id=x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 422 and "Unsupported media type" in response.json()["error"]
    auth = {"Authorization": f"Bearer {api_key}"}
    for method in ("GET", "PUT", "DELETE", "OPTIONS"):
        got = httpx.request(method, live_server.url + URL, headers=auth)
        assert got.status_code == 405 and got.json() == {"error": f'Method "{method}" not allowed.'}
        assert got.headers["Allow"] == "POST"
    # Without a key the 401 comes first, in the envelope too.
    got = httpx.options(live_server.url + URL)
    assert got.status_code == 401 and got.json() == {"error": "Invalid or missing API key."}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("field", "limit"), [("prompt", PROMPT_MAX_CHARS), ("first_message", FIRST_MESSAGE_MAX_CHARS)]
)
def test_override_limits_at_n_and_n_plus_1(post, agent, field, limit, settings):
    ok = post({"agent_id": str(agent.pk), "transport": "webrtc", field: "é" * limit})
    assert ok.status_code == 200, ok.text
    assert verifier(settings).verify(ok.json()["token"]).attributes[field] == "é" * limit
    too_long = post({"agent_id": str(agent.pk), "transport": "webrtc", field: "é" * (limit + 1)})
    assert too_long.status_code == 422
    assert too_long.json() == {
        "error": f"{field}: Ensure this field has no more than {limit} characters."
    }


@pytest.mark.django_db(transaction=True)
def test_livekit_attribute_limit_is_enforced_at_issue_time(post, agent):
    # Within both length limits, but four-byte characters take the attributes over 64 KiB.
    response = post(
        {
            "agent_id": str(agent.pk),
            "transport": "webrtc",
            "prompt": "😀" * PROMPT_MAX_CHARS,
            "first_message": "😀" * FIRST_MESSAGE_MAX_CHARS,
        }
    )
    assert response.status_code == 422
    assert response.json()["error"].startswith("prompt: must be at most 64 KiB")
    assert not Room.objects.exists() and not IssuedToken.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_webrtc_without_livekit_credentials_is_a_500_in_the_envelope(post, agent, settings):
    settings.LIVEKIT_API_SECRET = ""
    response = post({"agent_id": str(agent.pk), "transport": "webrtc"})
    assert response.status_code == 500
    assert response.json() == {"error": "LiveKit is not configured for this project."}
    # The websocket transport does not need LiveKit.
    assert post({"agent_id": str(agent.pk)}).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_overrides_are_free_text_with_line_breaks(post, agent, settings):
    prompt = "You are support.\n\n- Be brief.\n\t- Be kind.\r\n"
    response = post({"agent_id": str(agent.pk), "transport": "webrtc", "prompt": prompt})
    assert response.status_code == 200, response.text
    claims = verifier(settings).verify(response.json()["token"])
    assert claims.attributes["prompt"] == prompt
    assert json.loads(claims.room_config.agents[0].metadata)["prompt"] == prompt
    for bad in ("bell\x07", "nul\x00", "\ud800"):
        response = post(None, raw=json.dumps({"agent_id": str(agent.pk), "prompt": bad}).encode())
        assert response.status_code == 422, bad
        assert response.json()["error"].startswith("prompt: "), response.json()
    assert IssuedToken.objects.count() == 1
