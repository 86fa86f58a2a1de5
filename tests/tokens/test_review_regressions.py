"""Inputs a review found mishandled: an unparseable peer address, tokens that are strings but
not tokens, and a signing key made in a rolled-back transaction."""

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import transaction

from tokens import services
from tokens.models import IssuedToken, SigningKey

CHAT = {"ttl": 5, "channels": ["general"]}


@pytest.mark.parametrize("remote", ["not-an-ip", "", "999.1.1.1"])
def test_unparseable_peer_address_is_recorded_as_unknown(api, remote):
    response = api.post("/api/chat/tokens", CHAT, format="json", REMOTE_ADDR=remote)
    assert response.status_code == 200
    row = IssuedToken.objects.get()
    assert row.client_ip is None


def test_ipv6_peer_address_is_recorded(api):
    response = api.post("/api/chat/tokens", CHAT, format="json", REMOTE_ADDR="::1")
    assert response.status_code == 200
    assert IssuedToken.objects.get().client_ip == "::1"


ODD_TOKENS = ["a\x00b", "\ud800", "x" * 70_000, "\u202e.\u202e.\u202e"]


@pytest.mark.parametrize("token", ODD_TOKENS, ids=["nul", "surrogate", "70k", "bidi"])
@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_any_string_is_an_inactive_token_not_a_bad_request(api, token, form):
    if form and token == "\ud800":
        pytest.skip("a lone surrogate cannot be form-encoded")

    def post(path):
        if form:
            return api.post(
                path, urlencode({"token": token}), content_type="application/x-www-form-urlencoded"
            )
        # json.dumps escapes a lone surrogate as \\ud800, as a client would send it.
        return api.post(path, json.dumps({"token": token}), content_type="application/json")

    introspected = post("/api/v1/tokens/introspect")
    assert introspected.status_code == 200
    assert introspected.json() == {"active": False}
    assert post("/api/v1/tokens/revoke").status_code == 200


@pytest.mark.parametrize("token", [5, None, ["a"], {"a": 1}])
def test_a_token_that_is_not_a_string_is_a_bad_request(api, token):
    response = api.post("/api/v1/tokens/introspect", {"token": token}, format="json")
    assert response.status_code == 400
    assert "token" in response.json()


def test_a_signing_key_made_in_a_rolled_back_transaction_is_not_used(project):
    SigningKey.objects.filter(project=project).delete()
    services.signing_keys_forget()

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        services.token_issue(project=project, kind="chat", subject="a", ttl=timedelta(minutes=1))
        raise Rollback
    assert not SigningKey.objects.filter(project=project).exists()
    issued = services.token_issue(
        project=project, kind="chat", subject="b", ttl=timedelta(minutes=1)
    )
    assert services.token_verify(issued.token, kind="chat").valid
