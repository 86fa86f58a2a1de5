"""Fabric HTTP paths (the @signalwire/js 3.28 Fabric client's) through DRF's test client: chat-
token auth, SignalWire's error format, limits at N and N+1, tenancy and pagination links. The
real client drives them end to end in tests/interop/test_signalwire_js.py."""

import uuid

import httpx
import pytest
from rest_framework.test import APIClient

from chat import selectors, services
from chat.models import DETAILS_MAX, METADATA_MAX, TEXT_MAX, Member, Message
from tests.helpers import mint_chat
from tokens import services as token_services

RW = {"read": True, "write": True}
RO = {"read": True, "write": False}
ERROR_KEYS = {"type", "code", "message", "attribute", "url"}


def bearer(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def general(project):
    return services.address_get_or_create(project=project, name="general", display_name="Lobby")


@pytest.fixture
def alice(project, general):
    return mint_chat(project, member_id="alice", channels={"general": RW, "ro": RO})


def messages_url(address_id, **query):
    url = f"/api/fabric/conversations/{address_id}/messages"
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return url


def error_of(response, status):
    assert response.status_code == status, response.content
    [error] = response.json()["errors"]
    assert set(error) == ERROR_KEYS
    return error


# --- Authentication -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer not-a-token", "Basic eDp5", "Bearer a b"]
)
def test_without_a_chat_token_is_401(general, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(messages_url(general.pk))
    assert response.status_code == 401 and response.json() == {"error": "Unauthorized"}


def test_an_api_key_is_not_a_chat_token(general, api_key):
    assert bearer(api_key).get(messages_url(general.pk)).status_code == 401


def test_revoked_token_stops_at_once(general, alice):
    client = bearer(alice.token)
    assert client.get(messages_url(general.pk)).status_code == 200
    token_services.token_revoke(jti=alice.row.jti)
    assert client.get(messages_url(general.pk)).status_code == 401


# --- Messages: list -----------------------------------------------------------------------


def _send(conversation, n, member="bob"):
    return [
        services.message_send(conversation=conversation, member_id=member, text=f"m{i}")
        for i in range(n)
    ]


def test_pages_and_relative_links(general, alice):
    conversation = services.conversation_for_address(address=general)
    _send(conversation, 5)
    client = bearer(alice.token)
    first = client.get(messages_url(general.pk, page_size=2)).json()
    assert [m["text"] for m in first["data"]] == ["m4", "m3"]
    links = first["links"]
    assert links["self"] == links["first"] == messages_url(general.pk, page_size=2)
    assert links["prev"] is None and links["next"].startswith(messages_url(general.pk))
    second = client.get(links["next"]).json()
    assert [m["text"] for m in second["data"]] == ["m2", "m1"]
    assert second["links"]["self"] == links["next"]
    third = client.get(second["links"]["next"]).json()
    assert [m["text"] for m in third["data"]] == ["m0"] and third["links"]["next"] is None
    back = client.get(third["links"]["prev"]).json()
    assert [m["text"] for m in back["data"]] == ["m2", "m1"]
    item = first["data"][0]
    assert item["conversation_id"] == str(general.pk) and item["user_id"] == "bob"
    assert item["type"] == "message" and item["subtype"] == "chat"
    assert isinstance(item["ts"], float) and item["details"] == {} and item["metadata"] == {}


def test_hidden_messages_are_not_listed(general, alice):
    conversation = services.conversation_for_address(address=general)
    hidden, shown = _send(conversation, 2)
    services.message_hide(message=hidden)
    data = bearer(alice.token).get(messages_url(general.pk)).json()["data"]
    assert [m["id"] for m in data] == [str(shown.id)]


@pytest.mark.parametrize(
    ("size", "status"),
    [("1", 200), ("100", 200), ("0", 422), ("101", 422), ("x", 422), ("1.5", 422), ("", 422)],
)
def test_page_size_limits(general, alice, size, status):
    response = bearer(alice.token).get(messages_url(general.pk, page_size=size))
    if status == 422:
        assert error_of(response, 422)["attribute"] == "page_size"
    else:
        assert response.status_code == 200


def test_bad_cursor_is_422(general, alice):
    response = bearer(alice.token).get(messages_url(general.pk, after="nope"))
    assert error_of(response, 422)["attribute"] == "after"


def test_other_projects_address_is_404_like_an_unknown_one(general, other_project_and_key, alice):
    other, _ = other_project_and_key
    theirs = services.address_get_or_create(project=other, name="general")
    eve = mint_chat(other, member_id="eve", channels={"general": RW})
    client = bearer(eve.token)
    foreign = client.get(messages_url(general.pk))
    unknown = client.get(messages_url(uuid.uuid4()))
    garbage = client.get(messages_url("not-a-uuid"))
    assert foreign.status_code == unknown.status_code == garbage.status_code == 404
    assert foreign.json() == unknown.json() == garbage.json()
    assert client.get(f"/api/fabric/addresses/{general.pk}").json() == unknown.json()
    sent = client.post(
        "/api/fabric/messages", {"conversation_id": str(general.pk), "text": "x"}, format="json"
    )
    assert sent.status_code == 404
    assert not Message.objects.exists()
    # And each side sees its own "general" only.
    assert bearer(alice.token).get(messages_url(theirs.pk)).status_code == 404


def test_address_not_granted_is_403(project, alice):
    secret = services.address_get_or_create(project=project, name="secret")
    client = bearer(alice.token)
    assert error_of(client.get(messages_url(secret.pk)), 403)["code"] == "permission_denied"
    assert client.get(f"/api/fabric/addresses/{secret.pk}").status_code == 403
    response = client.post(
        "/api/fabric/conversations/join", {"conversation_id": str(secret.pk)}, format="json"
    )
    assert response.status_code == 403


# --- Messages: send -----------------------------------------------------------------------


def test_send_stores_joins_and_answers_the_message(general, alice):
    response = bearer(alice.token).post(
        "/api/fabric/messages",
        {
            "conversation_id": str(general.pk),
            "text": "hello",
            "metadata": {"m": 1},
            "details": {"d": 2},
            "group_id": "g-1",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    message = Message.objects.get()
    assert body["id"] == str(message.id) and body["text"] == "hello"
    assert body["metadata"] == {"m": 1} and body["details"] == {"d": 2, "group_id": "g-1"}
    assert body["user_id"] == "alice" and message.user_id == "alice"
    assert Member.objects.get().member_id == "alice"  # sending joins


def test_send_creates_a_missing_conversation(project, alice):
    address = services.address_get_or_create(project=project, name="general")
    address.conversation.delete()
    response = bearer(alice.token).post(
        "/api/fabric/messages", {"conversation_id": str(address.pk), "text": "hi"}, format="json"
    )
    assert response.status_code == 201
    assert selectors.conversation_for(project=project, conversation_id=address.pk) is not None


def test_read_only_cannot_send(project, alice):
    ro = services.address_get_or_create(project=project, name="ro")
    response = bearer(alice.token).post(
        "/api/fabric/messages", {"conversation_id": str(ro.pk), "text": "no"}, format="json"
    )
    assert error_of(response, 403)["code"] == "permission_denied"
    assert not Message.objects.exists()


def _json_of_length(n):
    return {"k": "x" * (n - len('{"k":""}'))}


@pytest.mark.parametrize(
    ("field", "value", "status"),
    [
        ("text", "t" * TEXT_MAX, 201),
        ("text", "t" * (TEXT_MAX + 1), 422),
        ("text", "", 422),
        ("text", 5, 422),
        ("text", "nul \x00", 422),
        ("metadata", _json_of_length(METADATA_MAX), 201),
        ("metadata", _json_of_length(METADATA_MAX + 1), 422),
        ("metadata", [1], 422),
        ("details", _json_of_length(DETAILS_MAX), 201),
        ("details", _json_of_length(DETAILS_MAX + 1), 422),
        ("group_id", "g" * 250, 201),
        ("group_id", "g" * 251, 422),
        ("group_id", 7, 422),
    ],
)
def test_send_limits(general, alice, field, value, status):
    body = {"conversation_id": str(general.pk), "text": "ok", field: value}
    response = bearer(alice.token).post("/api/fabric/messages", body, format="json")
    if status == 422:
        assert error_of(response, 422)["attribute"] == field
        assert not Message.objects.exists()
    else:
        assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"text": "x"}', b'{"conversation_id": null, "text": "x"}', b""],
)
def test_bad_bodies_are_422(general, alice, body):
    response = bearer(alice.token).post(
        "/api/fabric/messages", body, content_type="application/json"
    )
    assert response.status_code == 422, response.content
    assert set(response.json()["errors"][0]) == ERROR_KEYS


def test_wrong_method_is_405_in_the_same_format(alice):
    assert error_of(bearer(alice.token).get("/api/fabric/messages"), 405)


# --- Join and addresses -------------------------------------------------------------------


def test_join_is_idempotent_and_allowed_by_read(project, alice):
    ro = services.address_get_or_create(project=project, name="ro")
    client = bearer(alice.token)
    first = client.post(
        "/api/fabric/conversations/join", {"conversation_id": str(ro.pk)}, format="json"
    )
    again = client.post(
        "/api/fabric/conversations/join", {"conversation_id": str(ro.pk)}, format="json"
    )
    assert first.status_code == again.status_code == 200
    assert first.json()["joined"] is True and again.json()["joined"] is False
    assert first.json()["conversation_id"] == str(ro.pk)
    assert Member.objects.filter(member_id="alice").count() == 1


def test_address_by_id_and_by_name(general, alice):
    client = bearer(alice.token)
    one = client.get(f"/api/fabric/addresses/{general.pk}").json()
    assert one["id"] == str(general.pk) and one["display_name"] == "Lobby"
    listed = client.get("/api/fabric/addresses", {"name": "general"}).json()["data"]
    assert listed == [one]
    # A granted name that was never used is made on first lookup; an ungranted one is not.
    assert client.get("/api/fabric/addresses", {"name": "ro"}).json()["data"][0]["name"] == "ro"
    assert client.get("/api/fabric/addresses", {"name": "secret"}).json()["data"] == []
    assert client.get("/api/fabric/addresses", {"name": "bad\u202ename"}).json()["data"] == []
    assert {a["name"] for a in client.get("/api/fabric/addresses").json()["data"]} == {
        "general",
        "ro",
    }


# --- Served: oversize bodies are refused before Django reads them ------------------------


def test_oversize_fabric_body_is_refused_in_signalwire_format(chat_server):
    for path in ("/api/fabric/messages", "/api/fabric/conversations/join"):
        response = httpx.post(
            chat_server.base + path,
            content=b"x" * (1024 * 1024 + 1),
            headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["code"] == "body_too_large"
