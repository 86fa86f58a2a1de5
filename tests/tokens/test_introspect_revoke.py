"""POST /api/v1/tokens/introspect (RFC 7662) and /api/v1/tokens/revoke (RFC 7009).

Tokens are minted through the real chat-token endpoint and sent back both form-encoded (what
RFC 7662/7009 clients send) and as JSON.
"""

import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient

from tests.helpers import forge_chat_jwt
from tokens import services
from tokens.models import IssuedToken
from tokens.signals import tokens_revoked

INTROSPECT = "/api/v1/tokens/introspect"
REVOKE = "/api/v1/tokens/revoke"
CHANNELS = {"general": {"read": True, "write": False}}
INACTIVE = {"active": False}


def _send(client, url, data, encoding):
    if encoding == "form":
        return client.post(url, urlencode(data), content_type="application/x-www-form-urlencoded")
    return client.post(url, data, format="json")


@pytest.fixture(params=["form", "json"])
def encoding(request):
    return request.param


@pytest.fixture
def introspect(encoding):
    def call(client, token, **extra):
        return _send(client, INTROSPECT, {"token": token, **extra}, encoding)

    return call


@pytest.fixture
def revoke(encoding):
    def call(client, token, **extra):
        return _send(client, REVOKE, {"token": token, **extra}, encoding)

    return call


def _mint(client, **body) -> str:
    response = client.post(
        "/api/chat/tokens",
        {"ttl": 10, "channels": CHANNELS, "member_id": "alice", **body},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()["token"]


def _jti(token: str) -> str:
    return services.token_decode(token).jti


@pytest.fixture
def token(api):
    return _mint(api)


@pytest.fixture
def other_api(client_for, other_project_and_key):
    return client_for(other_project_and_key[1])


@pytest.fixture
def revoked_signals():
    calls = []

    def receiver(sender, **kwargs):
        calls.append({"sender": sender, "jtis": kwargs["jtis"], "project_id": kwargs["project_id"]})

    tokens_revoked.connect(receiver, weak=False)
    yield calls
    tokens_revoked.disconnect(receiver)


# --- Introspection --------------------------------------------------------------------------


def test_introspect_active_token(api, project, token, introspect):
    before = int(time.time())
    response = introspect(api, token)
    assert response.status_code == 200
    body = response.json()
    row = IssuedToken.objects.get(pk=_jti(token))
    assert body["active"] is True
    assert body["kind"] == "chat"
    assert body["sub"] == "alice"
    assert body["jti"] == row.jti
    assert body["iss"] == str(project.pk)
    assert before - 1 <= body["iat"] <= int(time.time())
    assert body["exp"] == body["iat"] + 600
    assert body["grants"]["channels"] == CHANNELS
    assert row.subject == "alice"
    assert row.grants["channels"] == CHANNELS


def test_introspect_accepts_a_token_type_hint(api, token, introspect):
    assert introspect(api, token, token_type_hint="access_token").json()["active"] is True


def test_introspect_trims_surrounding_whitespace(api, token, introspect):
    assert introspect(api, f"  {token}\n").json()["active"] is True


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        "a.b.c",
        "...",
        "x" * 9000,
        "eyJhbGciOiJub25lIn0.e30.",
    ],
    ids=["garbage", "three-parts", "dots", "oversize", "alg-none"],
)
def test_introspect_malformed_is_exactly_inactive(api, introspect, bad):
    response = introspect(api, bad)
    assert response.status_code == 200
    assert response.json() == INACTIVE


def test_introspect_unknown_jti_is_exactly_inactive(api, project, introspect):
    forged = forge_chat_jwt(project)
    assert services.token_verify(forged).reason == "unknown"
    assert introspect(api, forged).json() == INACTIVE


def test_introspect_expired_is_exactly_inactive(api, project, introspect):
    issued = services.token_issue(
        project=project, kind="chat", subject="alice", ttl=timedelta(seconds=-1)
    )
    assert introspect(api, issued.token).json() == INACTIVE


def test_introspect_revoked_is_exactly_inactive(api, token, introspect):
    assert services.token_revoke(jti=_jti(token)) is True
    assert introspect(api, token).json() == INACTIVE


def test_introspect_other_projects_token_is_exactly_inactive(api, other_api, token, introspect):
    assert introspect(api, token).json()["active"] is True
    assert introspect(other_api, token).json() == INACTIVE


# --- Revocation -----------------------------------------------------------------------------


def test_revoke_then_inactive(api, token, revoke, introspect, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = revoke(api, token)
    assert response.status_code == 200
    assert introspect(api, token).json() == INACTIVE
    row = IssuedToken.objects.get(pk=_jti(token))
    assert row.revoked_at is not None
    assert row.revoked_by == f"api-key:{row.api_key.prefix}"
    assert row.revoke_reason == "revoked through the API"
    assert services.token_verify(token).reason == "revoked"


def test_revoke_leaves_other_tokens_alone(api, token, revoke, introspect):
    other_token = _mint(api)
    assert revoke(api, token).status_code == 200
    assert introspect(api, other_token).json()["active"] is True


def test_revoke_is_idempotent_and_announced_once(
    api, project, token, revoke, revoked_signals, django_capture_on_commit_callbacks
):
    jti = _jti(token)
    with django_capture_on_commit_callbacks(execute=True):
        assert revoke(api, token).status_code == 200
    first = IssuedToken.objects.get(pk=jti)
    assert first.revoked_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        assert revoke(api, token).status_code == 200
    second = IssuedToken.objects.get(pk=jti)
    assert second.revoked_at == first.revoked_at
    assert second.revoked_by == first.revoked_by
    assert revoked_signals == [
        {"sender": IssuedToken, "jtis": [jti], "project_id": str(project.pk)}
    ]


def test_revoked_signal_waits_for_commit(
    api, token, revoke, revoked_signals, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert revoke(api, token).status_code == 200
    assert revoked_signals == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert [call["jtis"] for call in revoked_signals] == [[_jti(token)]]


@pytest.mark.parametrize(
    "bad", ["garbage", "a.b.c", "x" * 9000, "eyJhbGciOiJub25lIn0.e30."], ids=str
)
def test_revoke_garbage_is_200(
    api, revoke, bad, revoked_signals, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = revoke(api, bad)
    assert response.status_code == 200
    assert revoked_signals == []


def test_revoke_unknown_jti_is_200(api, project, revoke):
    forged = forge_chat_jwt(project)
    assert revoke(api, forged).status_code == 200
    assert not IssuedToken.objects.filter(pk="nope").exists()


def test_revoke_expired_token(api, project, revoke):
    # RFC 7009 lets a client revoke what it holds; an expired token is still recorded as revoked.
    issued = services.token_issue(
        project=project, kind="chat", subject="alice", ttl=timedelta(seconds=-1)
    )
    assert revoke(api, issued.token).status_code == 200
    assert IssuedToken.objects.get(pk=issued.row.pk).revoked_at is not None


def test_revoking_another_projects_token_does_nothing(
    api, other_api, token, revoke, introspect, revoked_signals, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = revoke(other_api, token)
    assert response.status_code == 200
    assert introspect(api, token).json()["active"] is True
    row = IssuedToken.objects.get(pk=_jti(token))
    assert (row.revoked_at, row.revoked_by, row.revoke_reason) == (None, "", "")
    assert revoked_signals == []


# --- Bad requests ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", [INTROSPECT, REVOKE])
@pytest.mark.parametrize("data", [{}, {"token": ""}, {"token": "   "}, {"tokens": "x"}], ids=repr)
def test_missing_token_is_400(api, url, data, encoding):
    response = _send(api, url, data, encoding)
    assert response.status_code == 400
    assert "token" in response.json()


@pytest.mark.parametrize("url", [INTROSPECT, REVOKE])
def test_json_token_must_be_a_string(api, url, token):
    response = api.post(url, {"token": [token]}, format="json")
    assert response.status_code == 400


@pytest.mark.parametrize("url", [INTROSPECT, REVOKE])
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer rk_000000000000_" + "A" * 43, "Bearer garbage", "Basic Zm9vOmJhcg=="],
    ids=["missing", "unknown-key", "garbage-key", "basic-garbage"],
)
def test_missing_or_bad_api_key_is_401(db, token, url, authorization, encoding):
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    response = _send(client, url, {"token": token}, encoding)
    assert response.status_code == 401
    # Nothing was revoked on the way.
    assert IssuedToken.objects.get(pk=_jti(token)).revoked_at is None


def test_revoked_api_key_cannot_revoke(client_for, project, api, token, revoke):
    spare = services.api_key_create(project=project)
    services.api_key_revoke(api_key=spare.row)
    assert revoke(client_for(spare.raw), token).status_code == 401
    assert IssuedToken.objects.get(pk=_jti(token)).revoked_at is None


def test_basic_auth_works_on_both_endpoints(
    client_for, project, api_key, token, introspect, revoke
):
    client = client_for(api_key, project_id=project.pk)
    assert introspect(client, token).json()["active"] is True
    assert revoke(client, token).status_code == 200
    assert introspect(client, token).json() == INACTIVE
