"""Names and identities refuse Unicode format characters (Cf) and a leading combining mark:
`ali\u200bce` would otherwise be another member than `alice` that looks the same in the admin and
in clients' UIs. Checked where names enter: chat-token member ids and channel names, the chat
API's addresses, and LiveKit identities."""

import pytest

from tests.helpers import mint_chat

INVISIBLE = [
    "ali\u200bce",  # zero-width space
    "ali\u2060ce",  # word joiner
    "\ufeffalice",  # byte-order mark
    "alice\u200e",  # left-to-right mark
    "alice\u200f",  # right-to-left mark
    "ali\u061cce",  # Arabic letter mark
    "ali\u00adce",  # soft hyphen
    "\u0301\u0301",  # combining marks alone
]


@pytest.mark.parametrize("name", INVISIBLE)
def test_chat_tokens_refuse_invisible_member_ids_and_channel_names(api, name):
    for body in (
        {"ttl": 5, "channels": ["general"], "member_id": name},
        {"ttl": 5, "channels": [name]},
    ):
        response = api.post("/api/chat/tokens", body, format="json")
        assert response.status_code == 422, (name, response.content)
        assert response.json()["errors"][0]["type"] == "validation_error"


def test_visible_names_still_work(api):
    for name in ("alice", "Zoë", "José", "名前", "e\u0301clair"):  # a mark after a letter is fine
        body = {"ttl": 5, "channels": [name], "member_id": name}
        assert api.post("/api/chat/tokens", body, format="json").status_code == 200, name


@pytest.mark.parametrize("name", INVISIBLE)
def test_the_chat_api_refuses_invisible_address_names(api, name):
    response = api.post("/api/v1/addresses", {"name": name}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


@pytest.mark.parametrize("name", INVISIBLE[:3])
def test_livekit_identities_refuse_invisible_characters(api, name, settings):
    response = api.post(
        "/api/v1/livekit/token-source",
        {"participant_identity": name, "room_name": "lobby"},
        format="json",
    )
    assert response.status_code == 400
    assert "participant_identity" in response.json()


def test_relay_member_ids_refuse_invisible_characters(project):
    from chat import validation
    from tokens.errors import BadInput

    mint_chat(project)  # the project has its signing key
    with pytest.raises(BadInput):
        validation.member_id("ali\u200bce")
    assert validation.member_id("alice") == "alice"
