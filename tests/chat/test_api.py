"""Roomkey's own chat API (/api/v1/addresses, /api/v1/conversations/…) through DRF's client.

API-key authentication, tenancy (another project's objects are the same 404 as unknown ones),
DRF's error format for every bad request, every limit at N and N+1, and keyset history pages.
The end-to-end path (a message created here reaching a relay subscriber) is in test_api_e2e.
"""

import json
import unicodedata
import uuid

import pytest

from chat import selectors, services
from chat.models import (
    DETAILS_MAX,
    DISPLAY_NAME_MAX,
    MEMBER_ID_MAX,
    METADATA_MAX,
    TEXT_MAX,
    USER_NAME_MAX,
    Address,
    Conversation,
    Message,
)
from tests.helpers import mint_chat

ADDRESSES = "/api/v1/addresses"
CONVERSATIONS = "/api/v1/conversations"
NOT_FOUND = {"detail": "Not found."}


def compact(value) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def object_of_length(n: int) -> dict:
    value = {"k": "x" * (n - len('{"k":""}'))}
    assert compact(value) == n
    return value


@pytest.fixture
def other_api(client_for, other_project_and_key):
    return client_for(other_project_and_key[1])


@pytest.fixture
def general(project):
    return services.address_create(project=project, name="general", display_name="General")


def messages_url(conversation_id) -> str:
    return f"{CONVERSATIONS}/{conversation_id}/messages"


def send(conversation, text, *, member_id="alice", **kwargs):
    return services.message_send(
        conversation=conversation, member_id=member_id, text=text, **kwargs
    )


# --- Authentication -----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", [ADDRESSES, CONVERSATIONS])
def test_every_endpoint_needs_an_api_key(client_for, path):
    for client in (client_for(None), client_for("rk_000000000000_" + "x" * 43)):
        response = client.get(path)
        assert response.status_code == 401
        assert set(response.json()) == {"detail"}


@pytest.mark.django_db
def test_a_chat_token_is_not_an_api_key(client_for, project, general):
    token = mint_chat(project, member_id="alice").token
    for path in (ADDRESSES, CONVERSATIONS, f"{CONVERSATIONS}/{general.pk}/messages"):
        response = client_for(token).get(path)
        assert response.status_code == 401, path
    response = client_for(token).post("/api/chat/tokens", {"ttl": 1, "channels": ["x"]})
    assert response.status_code == 401
    assert client_for(token).post("/api/v1/tokens/revoke", {"token": token}).status_code == 401


@pytest.mark.django_db
def test_basic_auth_works_like_bearer(client_for, project_and_key, general):
    project, key = project_and_key
    response = client_for(key, project_id=str(project.pk)).get(ADDRESSES)
    assert response.status_code == 200
    assert [a["name"] for a in response.json()["results"]] == ["general"]


# --- Addresses ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_address_create_retrieve_update_delete(api, project):
    created = api.post(ADDRESSES, {"name": "support", "display_name": "Support"}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["name"] == "support" and body["display_name"] == "Support"
    assert body["conversation_id"] == body["id"]
    address = Address.objects.get(pk=body["id"])
    assert address.project == project
    assert Conversation.objects.filter(pk=address.pk, project=project).exists()

    url = f"{ADDRESSES}/{address.pk}"
    assert api.get(url).json() == body
    patched = api.patch(url, {"display_name": "Help desk"}, format="json")
    assert patched.status_code == 200 and patched.json()["display_name"] == "Help desk"
    put = api.put(url, {"name": "support", "display_name": "Desk"}, format="json")
    assert put.status_code == 200 and put.json()["display_name"] == "Desk"
    assert api.get(url + "/").status_code == 200  # a trailing slash is fine too

    assert api.delete(url).status_code == 204
    assert not Address.objects.filter(pk=address.pk).exists()
    assert not Conversation.objects.filter(pk=address.pk).exists()
    assert api.get(url).status_code == 404


@pytest.mark.django_db
def test_address_cannot_be_renamed(api, general):
    response = api.patch(f"{ADDRESSES}/{general.pk}", {"name": "other"}, format="json")
    assert response.status_code == 400
    assert response.json()["name"] == ["An address cannot be renamed; create a new one."]
    general.refresh_from_db()
    assert general.name == "general"


@pytest.mark.django_db
def test_address_list_filters_by_name_nfc(api, project):
    composed = unicodedata.normalize("NFC", "café")
    decomposed = unicodedata.normalize("NFD", "café")
    assert composed != decomposed
    services.address_create(project=project, name=composed)
    services.address_create(project=project, name="general")
    everything = api.get(ADDRESSES).json()["results"]
    assert sorted(a["name"] for a in everything) == sorted([composed, "general"])
    found = api.get(ADDRESSES, {"name": decomposed}).json()["results"]
    assert [a["name"] for a in found] == [composed]
    assert api.get(ADDRESSES, {"name": "nope"}).json()["results"] == []
    services.address_create(project=project, name="x" * 250)
    assert len(api.get(ADDRESSES, {"name": "x" * 250}).json()["results"]) == 1
    # Names no token could grant simply match nothing.
    for bad in ["sw_x", "a\u202eb", "x" * 251, "a\x00b"]:
        response = api.get(ADDRESSES, {"name": bad})
        assert response.status_code == 200 and response.json()["results"] == []


@pytest.mark.django_db
def test_nfc_equal_names_are_one_address(api):
    first = api.post(ADDRESSES, {"name": unicodedata.normalize("NFD", "café")}, format="json")
    assert first.status_code == 201
    assert first.json()["name"] == unicodedata.normalize("NFC", "café")
    again = api.post(ADDRESSES, {"name": unicodedata.normalize("NFC", "café")}, format="json")
    assert again.status_code == 400
    assert again.json() == {"name": ["An address with this name already exists."]}
    assert Address.objects.count() == 1


@pytest.mark.django_db
def test_address_name_limits(api):
    assert api.post(ADDRESSES, {"name": "x" * 250}, format="json").status_code == 201
    cases = {
        "x" * 251: "must be 1 to 250 characters long",
        "": "This field may not be blank.",
        "sw_private": "starts with the reserved prefix sw_",
        "left\u202eright": "contains control or bidirectional-override characters",
        "tab\there": "contains control or bidirectional-override characters",
    }
    for name, message in cases.items():
        response = api.post(ADDRESSES, {"name": name}, format="json")
        assert response.status_code == 400, name
        [error] = response.json()["name"]
        assert message in error, (name, error)
    for bad in [None, 5, ["general"], {"a": 1}]:
        response = api.post(ADDRESSES, {"name": bad}, format="json")
        assert response.status_code == 400 and "name" in response.json()
    assert api.post(ADDRESSES, {}, format="json").json() == {"name": ["This field is required."]}
    assert Address.objects.count() == 1


@pytest.mark.django_db
def test_display_name_limits(api):
    ok = api.post(ADDRESSES, {"name": "a", "display_name": "d" * DISPLAY_NAME_MAX}, format="json")
    assert ok.status_code == 201
    too_long = api.post(
        ADDRESSES, {"name": "b", "display_name": "d" * (DISPLAY_NAME_MAX + 1)}, format="json"
    )
    assert too_long.status_code == 400 and list(too_long.json()) == ["display_name"]
    patched = api.patch(
        f"{ADDRESSES}/{ok.json()['id']}",
        {"display_name": "d" * (DISPLAY_NAME_MAX + 1)},
        format="json",
    )
    assert patched.status_code == 400 and list(patched.json()) == ["display_name"]


@pytest.mark.django_db
def test_other_projects_addresses_are_404_like_unknown_ones(api, other_api, general):
    url = f"{ADDRESSES}/{general.pk}"
    unknown = f"{ADDRESSES}/{uuid.uuid4()}"
    for client, path in [(other_api, url), (api, unknown), (api, f"{ADDRESSES}/not-a-uuid")]:
        for method in ("get", "patch", "put", "delete"):
            response = getattr(client, method)(path, {"display_name": "x"}, format="json")
            assert response.status_code == 404, (method, path)
            assert response.json() == NOT_FOUND
    assert other_api.get(ADDRESSES).json()["results"] == []
    assert other_api.get(ADDRESSES, {"name": "general"}).json()["results"] == []
    # The other project may use the same name: names are unique per project only.
    assert other_api.post(ADDRESSES, {"name": "general"}, format="json").status_code == 201
    general.refresh_from_db()
    assert general.display_name == "General"


@pytest.mark.django_db
def test_bad_bodies_are_drf_errors(api):
    response = api.post(ADDRESSES, b"{not json", content_type="application/json")
    assert response.status_code == 400 and "detail" in response.json()
    response = api.post(ADDRESSES, b"[" * 100_000, content_type="application/json")
    assert response.status_code == 400 and "detail" in response.json()
    response = api.post(ADDRESSES, b"name=x", content_type="text/plain")
    assert response.status_code == 415
    response = api.post(
        ADDRESSES,
        json.dumps({"name": "x" * (1024 * 1024)}).encode(),
        content_type="application/json",
    )
    assert response.status_code == 413 and "detail" in response.json()
    assert Address.objects.count() == 0


# --- Conversations ------------------------------------------------------------------------


@pytest.mark.django_db
def test_conversations_list_and_retrieve(api, other_api, project, general):
    services.address_create(project=project, name="news")
    listed = api.get(CONVERSATIONS).json()
    assert {c["name"] for c in listed["results"]} == {"general", "news"}
    one = api.get(f"{CONVERSATIONS}/{general.pk}").json()
    assert one["id"] == one["address_id"] == str(general.pk)
    assert one["name"] == "general" and one["display_name"] == "General"
    assert other_api.get(CONVERSATIONS).json()["results"] == []
    for path in ("", "/messages", "/members"):
        # Another project's, an unknown and a malformed id: one identical 404.
        for client, ident in [(other_api, general.pk), (api, uuid.uuid4()), (api, "not-a-uuid")]:
            response = client.get(f"{CONVERSATIONS}/{ident}{path}")
            assert response.status_code == 404, (ident, path)
            assert response.json() == NOT_FOUND
    assert (
        other_api.post(messages_url(general.pk), {"text": "hi"}, format="json").status_code == 404
    )
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_conversation_list_pages(api, project):
    for index in range(5):
        services.address_create(project=project, name=f"room-{index}")
    first = api.get(CONVERSATIONS, {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    names = [c["name"] for c in first["results"]]
    page = first
    while page["next"]:
        page = api.get(page["next"]).json()
        names += [c["name"] for c in page["results"]]
    assert sorted(names) == [f"room-{i}" for i in range(5)]


@pytest.mark.django_db
@pytest.mark.parametrize("path", [ADDRESSES, CONVERSATIONS])
def test_page_size_limit(api, project, path):
    assert api.get(path, {"page_size": 100}).status_code == 200
    for bad in (101, 0, "x"):
        response = api.get(path, {"page_size": bad})
        assert response.status_code == 400 and list(response.json()) == ["page_size"]


@pytest.mark.django_db
def test_bad_list_cursor_is_a_400_naming_it(api, general):
    """DRF's own answer to a bad cursor is a 404, as if the list were gone; here it is the
    same 400 the history's cursors get."""
    for path in (ADDRESSES, CONVERSATIONS, f"{CONVERSATIONS}/{general.pk}/members"):
        assert api.get(path).status_code == 200
        # Not base64; base64 of junk; too long; a well-formed cursor whose position ("p=2020")
        # is not a time (DRF would pass it to the database: a 500).
        for bad in ("x", "bm9wZQ", "a" * 300, "cD0yMDIw", "bz0xJnI9MSZwPXg="):
            response = api.get(path, {"cursor": bad})
            assert response.status_code == 400, (path, bad)
            assert response.json() == {"cursor": ["Cursor is not valid."]}
        # Positions that are times at the ends of the calendar, and huge offsets: no 500.
        for odd in (
            "cD05OTk5LTEyLTMxVDIzOjU5OjU5LTE0OjAw",  # p=9999-12-31T23:59:59-14:00
            "cD0wMDAxLTAxLTAxVDAwOjAwOjAwJTJCMTQ6MDA=",  # p=0001-01-01T00:00:00+14:00
            "bz05OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ==",  # o=99999999999999999999999999
        ):
            assert api.get(path, {"cursor": odd}).status_code in (200, 400), (path, odd)


# --- Messages -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_send_and_list_messages(api, general):
    conversation = general.conversation
    response = api.post(
        messages_url(general.pk),
        {
            "text": "hello\nworld",
            "user_id": "support-bot",
            "user_name": "Support",
            "metadata": {"k": 1},
            "details": {"d": True},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    sent = response.json()
    assert sent["text"] == "hello\nworld" and sent["user_id"] == "support-bot"
    assert sent["user_name"] == "Support" and sent["metadata"] == {"k": 1}
    assert sent["details"] == {"d": True}
    assert sent["type"] == "message" and sent["subtype"] == "chat"
    assert sent["conversation_id"] == str(general.pk) and isinstance(sent["ts"], float)
    default = api.post(messages_url(general.pk), {"text": "x", "subtype": "log"}, format="json")
    assert default.json()["user_id"] == "api" and default.json()["subtype"] == "log"

    listed = api.get(messages_url(general.pk)).json()
    assert [m["id"] for m in listed["results"]] == [default.json()["id"], sent["id"]]
    assert listed["next"] is None and listed["previous"] is None
    assert Message.objects.filter(conversation=conversation).count() == 2


@pytest.mark.django_db
def test_message_limits(api, general):
    url = messages_url(general.pk)
    ok = {
        "text": "t" * TEXT_MAX,
        "user_id": "u" * MEMBER_ID_MAX,
        "user_name": "n" * USER_NAME_MAX,
        "metadata": object_of_length(METADATA_MAX),
        "details": object_of_length(DETAILS_MAX),
    }
    assert api.post(url, ok, format="json").status_code == 201
    over = {
        "text": "t" * (TEXT_MAX + 1),
        "user_id": "u" * (MEMBER_ID_MAX + 1),
        "user_name": "n" * (USER_NAME_MAX + 1),
        "metadata": object_of_length(METADATA_MAX + 1),
        "details": object_of_length(DETAILS_MAX + 1),
    }
    for field, value in over.items():
        response = api.post(url, {**ok, field: value}, format="json")
        assert response.status_code == 400, field
        assert list(response.json()) == [field], response.json()
    bad = {
        "text": ["", None, 5, "a\x00b", "\ud800"],
        "user_id": ["", "a\u202eb", 5],
        "metadata": [[], "x", {"a": "\x00"}],
        "details": [5, {"a": "\ud800"}],
        "subtype": ["message", ""],
    }
    for field, values in bad.items():
        for value in values:
            # json.dumps escapes lone surrogates (\ud800), as a client's encoder would.
            body = json.dumps({**ok, field: value})
            response = api.post(url, body, content_type="application/json")
            assert response.status_code == 400, (field, value)
            assert list(response.json()) == [field], (field, value, response.json())
    assert api.post(url, {}, format="json").json() == {"text": ["This field is required."]}
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_history_pages_newest_first_with_cursors(api, general):
    conversation = general.conversation
    ids = [str(send(conversation, f"m{i}").id) for i in range(7)]
    newest_first = ids[::-1]
    first = api.get(messages_url(general.pk), {"page_size": 3}).json()
    assert [m["id"] for m in first["results"]] == newest_first[:3]
    assert first["previous"] is None and "before=" in first["next"]
    second = api.get(first["next"]).json()
    assert [m["id"] for m in second["results"]] == newest_first[3:6]
    third = api.get(second["next"]).json()
    assert [m["id"] for m in third["results"]] == newest_first[6:]
    assert third["next"] is None
    back = api.get(third["previous"]).json()
    assert [m["id"] for m in back["results"]] == newest_first[3:6]
    back = api.get(back["previous"]).json()
    assert [m["id"] for m in back["results"]] == newest_first[:3]
    assert back["previous"] is None


@pytest.mark.django_db
def test_history_pages_survive_equal_timestamps(api, general):
    # Messages with the same ts are still cut exactly once each, by id.
    conversation = general.conversation
    for i in range(5):
        send(conversation, f"m{i}")
    Message.objects.update(ts=1700000000.5)
    seen, page = [], api.get(messages_url(general.pk), {"page_size": 2}).json()
    seen += [m["id"] for m in page["results"]]
    while page["next"]:
        page = api.get(page["next"]).json()
        seen += [m["id"] for m in page["results"]]
    assert len(seen) == len(set(seen)) == 5
    assert seen == sorted(seen, reverse=True)


@pytest.mark.django_db
def test_hidden_messages_are_not_listed(api, general):
    conversation = general.conversation
    keep, hide = send(conversation, "keep"), send(conversation, "hide")
    assert services.message_hide(message=hide)
    listed = api.get(messages_url(general.pk)).json()["results"]
    assert [m["id"] for m in listed] == [str(keep.id)]


@pytest.mark.django_db
def test_history_query_errors(api, general):
    url = messages_url(general.pk)
    assert api.get(url, {"page_size": 100}).status_code == 200
    for params, field in [
        ({"page_size": 101}, "page_size"),
        ({"page_size": 0}, "page_size"),
        ({"before": "garbage"}, "before"),
        ({"after": "%%%"}, "after"),
        ({"before": "x" * 201}, "before"),
        ({"before": "a", "after": "b"}, "non_field_errors"),
    ]:
        response = api.get(url, params)
        assert response.status_code == 400, params
        assert list(response.json()) == [field], response.json()


@pytest.mark.django_db
def test_members_list(api, general):
    conversation = general.conversation
    services.member_join(conversation=conversation, member_id="alice", state={"name": "A"})
    services.member_join(conversation=conversation, member_id="bob")
    services.member_leave(conversation=conversation, member_id="bob")
    members = api.get(f"{CONVERSATIONS}/{general.pk}/members").json()["results"]
    by_id = {m["id"]: m for m in members}
    assert set(by_id) == {"alice", "bob"}
    assert by_id["alice"]["state"] == {"name": "A"} and by_id["alice"]["present"] is True
    assert by_id["bob"]["present"] is False and by_id["bob"]["left_at"]
    assert selectors.members_of(conversation=conversation).count() == 2


@pytest.mark.django_db
def test_method_not_allowed_on_conversations(api, general):
    assert api.post(CONVERSATIONS, {}, format="json").status_code == 405
    assert api.delete(f"{CONVERSATIONS}/{general.pk}").status_code == 405
    assert api.post(f"{CONVERSATIONS}/{general.pk}/members", {}, format="json").status_code == 405


@pytest.mark.django_db
def test_no_body_or_query_gets_a_500(api, general):
    """Whatever arrives, the answer is a DRF error or a success, never a 500, and never a
    half-written row."""
    conversation = f"{CONVERSATIONS}/{general.pk}"
    bodies = [
        b"",
        b"null",
        b"[]",
        b'"text"',
        b"123",
        b'{"text": {"nested": 1}}',
        b'{"name": 1e400}',
        b'{"name": NaN}',
        b"\xff\xfe",
        b'{"text": "\\ud800"}',
        b'{"metadata": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
    ]
    targets = [
        ("post", ADDRESSES),
        ("patch", f"{ADDRESSES}/{general.pk}"),
        ("put", f"{ADDRESSES}/{general.pk}"),
        ("post", f"{conversation}/messages"),
    ]
    for method, path in targets:
        for body in bodies:
            response = getattr(api, method)(path, body, content_type="application/json")
            assert response.status_code < 500, (method, path, body[:40])
            if method == "post":  # an update may legitimately change nothing
                assert response.status_code == 400, (path, body[:40], response.json())
    queries = [
        {"before": "MTcwMC4wX3h5eg"},  # a cursor of the right shape with a bad id
        {"before": "bmFuXzAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw"},  # nan_...
        {"after": "\x00"},
        {"page_size": "1e3"},
        {"page_size": "-1"},
    ]
    for params in queries:
        response = api.get(f"{conversation}/messages", params)
        assert response.status_code == 400, (params, response.json())
    assert Address.objects.count() == 1 and not Message.objects.exists()
    general.refresh_from_db()
    assert (general.name, general.display_name) == ("general", "General")
