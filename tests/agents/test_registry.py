"""Voice and LiveKit tokens in the foundation's registry: introspection, revocation, the
revoketokens command, and the decoders' refusals."""

import time
from datetime import timedelta
from io import StringIO
from urllib.parse import urlencode

import jwt
import pytest
from django.core.management import call_command

from agents import livekit, services
from agents.models import LiveKitConfig
from tokens import crypto
from tokens import services as token_services
from tokens.models import IssuedToken

# Through real HTTP: every test here talks to live_server.
pytestmark = pytest.mark.django_db(transaction=True)

INTROSPECT = "/api/v1/tokens/introspect"
REVOKE = "/api/v1/tokens/revoke"


@pytest.fixture
def api(live_api):
    return live_api


@pytest.fixture
def client_for(live_client_for):
    return live_client_for


def _send(client, url, token, encoding="json"):
    if encoding == "form":
        return client.post(
            url, urlencode({"token": token}), content_type="application/x-www-form-urlencoded"
        )
    return client.post(url, {"token": token}, format="json")


def _issue_both(api, agent, assistant):
    voice = api.post("/v1/session-token", {"agent_id": str(agent.pk)}, format="json")
    webrtc = api.post(
        "/v1/session-token", {"agent_id": str(agent.pk), "transport": "webrtc"}, format="json"
    )
    web_call = api.post("/web_call/get_token", {"assistant_id": str(assistant.pk)}, format="json")
    return voice.json()["token"], webrtc.json()["token"], web_call.json()["data"]["token"]


@pytest.mark.parametrize("encoding", ["form", "json"])
def test_introspect_then_revoke_each_kind(api, agent, version, assistant, encoding):
    voice, webrtc, web_call = _issue_both(api, agent, assistant)
    for token, kind, subject in (
        (voice, "voice", jwt.decode(voice, options={"verify_signature": False})["sub"]),
        (webrtc, "livekit", jwt.decode(webrtc, options={"verify_signature": False})["sub"]),
        (web_call, "livekit", jwt.decode(web_call, options={"verify_signature": False})["sub"]),
    ):
        answer = _send(api, INTROSPECT, token, encoding).json()
        assert answer["active"] is True and answer["kind"] == kind and answer["sub"] == subject
        assert answer["iss"] == str(agent.project_id)
        assert _send(api, REVOKE, token, encoding).status_code == 200
        assert _send(api, INTROSPECT, token, encoding).json() == {"active": False}
        row = IssuedToken.objects.get(pk=answer["jti"])
        assert row.revoked_at is not None and row.revoked_by.startswith("api-key:")


def test_another_project_sees_nothing_and_revokes_nothing(
    api, agent, version, assistant, client_for, other_project_and_key
):
    other = client_for(other_project_and_key[1])
    for token in _issue_both(api, agent, assistant):
        assert _send(other, INTROSPECT, token).json() == {"active": False}
        assert _send(other, REVOKE, token).status_code == 200
        assert _send(api, INTROSPECT, token).json()["active"] is True


def test_revoketokens_by_kind(api, agent, version, assistant, project):
    _issue_both(api, agent, assistant)
    out = StringIO()
    call_command("revoketokens", "--project", str(project.pk), "--kind", "livekit", stdout=out)
    assert "Would revoke 2 token(s)" in out.getvalue()
    call_command(
        "revoketokens", "--project", str(project.pk), "--kind", "livekit", "--yes", stdout=out
    )
    assert set(IssuedToken.objects.revoked().values_list("kind", flat=True)) == {"livekit"}
    assert IssuedToken.objects.active().get().kind == "voice"


def test_kinds_are_never_accepted_for_each_other(api, agent, version, assistant):
    from tests.helpers import mint_chat

    voice, webrtc, _ = _issue_both(api, agent, assistant)
    chat = mint_chat(agent.project).token
    assert token_services.token_verify(voice, kind="voice").valid
    for token in (webrtc, chat):
        assert not token_services.token_verify(token, kind="voice").valid
    for token in (voice, chat):
        assert not token_services.token_verify(token, kind="livekit").valid
    assert token_services.token_verify(webrtc, kind="livekit").valid


def test_livekit_decoder_checks_the_projects_secret(api, agent, version, assistant, project):
    _, webrtc, _ = _issue_both(api, agent, assistant)
    claims = jwt.decode(webrtc, options={"verify_signature": False})
    # The same claims (a registered jti) signed with another secret: refused.
    forged = jwt.encode(claims, "x" * 64, algorithm="HS256")
    assert token_services.token_verify(forged).reason == "bad_signature"
    # An unregistered jti with the right secret: unknown.
    stray = jwt.encode({**claims, "jti": "f" * 32}, crypto_secret(), algorithm="HS256")
    assert token_services.token_verify(stray).reason == "unknown"
    # The right secret but another issuer (API key): refused.
    wrong_iss = jwt.encode({**claims, "iss": "other"}, crypto_secret(), algorithm="HS256")
    assert token_services.token_verify(wrong_iss).reason == "bad_signature"
    # Rotating the project's LiveKit secret makes its old tokens stop verifying.
    assert token_services.token_verify(webrtc).valid
    LiveKitConfig.objects.create(project=project, api_key="K2", api_secret="s" * 40)
    assert token_services.token_verify(webrtc).reason == "bad_signature"


def crypto_secret():
    from django.conf import settings

    return settings.LIVEKIT_API_SECRET


def test_expired_livekit_token(api, agent, version, assistant, settings):
    # A TTL of zero seconds: the token expires the second it is made.
    settings.ROOMKEY_AGENTS = {**settings.ROOMKEY_AGENTS, "LIVEKIT_TOKEN_TTL": timedelta(0)}
    _, webrtc, _ = _issue_both(api, agent, assistant)
    assert token_services.token_verify(webrtc).reason == "expired"


def test_garbage_with_a_livekit_header_is_malformed(db):
    header = crypto.jwt_encode({"x": 1}, secret=b"k" * 32, alg="HS256", headers={"typ": "JWT"})
    assert livekit.sniff_livekit(header)
    assert token_services.token_verify(header).reason == "malformed"
    assert token_services.token_verify("eyJhbGciOiJIUzI1NiJ9." + "a" * 9000).reason in (
        "oversize",
        "malformed",
    )


def test_room_end_revokes_every_token_of_the_room(api, agent, version, project):
    body = api.post(
        "/v1/session-token", {"agent_id": str(agent.pk), "transport": "webrtc"}, format="json"
    ).json()
    from agents.models import Room

    room = Room.objects.get(name=body["room"])
    # A second participant token for the same room, through the token source.
    api.post("/api/v1/livekit/token-source", {"room_name": room.name}, format="json")
    assert services.room_end(room=room, by="test") == 2
    assert room.ended_at is not None
    assert _send(api, INTROSPECT, body["token"]).json() == {"active": False}
    assert services.room_end(room=room, by="test") == 0  # idempotent


def test_voice_tokens_are_small(api, agent, version):
    token = api.post(
        "/v1/session-token", {"agent_id": str(agent.pk), "prompt": "p" * 16000}, format="json"
    ).json()["token"]
    # Overrides live on the session row, not in the token that goes in a URL.
    assert len(token) < 1000
    assert time.time() < jwt.decode(token, options={"verify_signature": False})["exp"]


# --- LiveKit tokens: the registry row, not the token, says until when and what ---------------


def _resigned(token: str, **changes) -> str:
    """`token` signed anew with the LiveKit secret (which the LiveKit server holds, and which in
    development is public), with `changes` to its claims."""
    from django.conf import settings

    claims = {**jwt.decode(token, options={"verify_signature": False}), **changes}
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, settings.LIVEKIT_API_SECRET, algorithm="HS256")


def test_a_resigned_livekit_token_is_not_the_token_roomkey_issued(api, agent, version):
    issued = api.post(
        "/v1/session-token", {"agent_id": str(agent.pk), "transport": "webrtc"}, format="json"
    ).json()["token"]
    claims = jwt.decode(issued, options={"verify_signature": False})
    answer = _send(api, INTROSPECT, issued).json()
    assert (answer["active"], answer["exp"]) == (True, claims["exp"])
    assert _send(api, INTROSPECT, _resigned(issued)).json()["active"] is True  # same claims
    forged = {
        "a later expiry": {"exp": claims["exp"] + 30 * 86400},
        "no expiry": {"exp": None},
        "an earlier not-before": {"nbf": claims["nbf"] - 3600},
        "a later not-before": {"nbf": claims["nbf"] + 3600},
        "more grants": {"video": {**claims["video"], "roomAdmin": True, "roomCreate": True}},
        "another room": {"video": {**claims["video"], "room": "someone-elses-room"}},
        "another identity": {"sub": "someone-else"},
    }
    for name, changes in forged.items():
        answer = _send(api, INTROSPECT, _resigned(issued, **changes))
        assert answer.json() == {"active": False}, name
