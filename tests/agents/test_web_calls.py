"""Seed 004: POST /web_call/get_token through live_server; tokens checked with livekit-api."""

import json
import re
import uuid

import httpx
import jwt
import pytest
from livekit.api import TokenVerifier

from agents.models import Assistant, Room
from agents.serializers import WEB_CALL_METADATA_MAX_CHARS
from tokens.models import IssuedToken

URL = "/web_call/get_token"


def failure(message):
    return {"success": False, "message": message, "data": None}


@pytest.fixture
def post(live_post):
    return live_post(URL)


@pytest.mark.django_db(transaction=True)
def test_web_call_token(post, assistant, settings):
    response = post(
        {"assistant_id": str(assistant.pk), "metadata": {"name": "John Doe", "plan": "premium"}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["message"] == "Token generated successfully"
    assert set(body["data"]) == {"room_name", "token"}
    room_name = body["data"]["room_name"]
    assert re.fullmatch(rf"{assistant.pk}_[0-9a-f]{{8}}", room_name)
    claims = TokenVerifier(settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET).verify(
        body["data"]["token"]
    )
    assert claims.video.room == room_name and claims.video.room_join is True
    assert claims.video.can_publish and claims.video.can_subscribe
    assert claims.video.can_publish_data  # typed chat on lk.chat is a data stream
    assert claims.video.can_publish_sources == ["microphone"]
    assert claims.video.room_admin is None and claims.video.room_create is None
    [dispatch] = claims.room_config.agents
    assert dispatch.agent_name == "concierge"
    meta = json.loads(dispatch.metadata)
    assert meta["prompt"] == "Help John Doe on the premium plan. Unknown: []"
    assert meta["first_message"] == "Hello John Doe!"
    assert meta["assistant_id"] == str(assistant.pk) and meta["room"] == room_name
    assert meta["metadata"] == {"name": "John Doe", "plan": "premium"}
    room = Room.objects.get(name=room_name)
    assert room.assistant == assistant and room.metadata == meta["metadata"]
    row = IssuedToken.objects.get(
        pk=jwt.decode(body["data"]["token"], options={"verify_signature": False})["jti"]
    )
    assert row.kind == "livekit" and row.resource == room_name
    assert row.subject == claims.identity and row.grants["assistant_id"] == str(assistant.pk)


@pytest.mark.django_db(transaction=True)
def test_numbers_booleans_and_no_metadata(post, assistant, settings):
    verify = TokenVerifier(settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET).verify
    body = post({"assistant_id": str(assistant.pk), "metadata": {"name": True, "plan": 2.5}}).json()
    meta = json.loads(verify(body["data"]["token"]).room_config.agents[0].metadata)
    assert meta["prompt"] == "Help true on the 2.5 plan. Unknown: []"
    for payload in (
        {"assistant_id": str(assistant.pk)},
        {"assistant_id": str(assistant.pk), "metadata": None},
    ):
        body = post(payload).json()
        meta = json.loads(verify(body["data"]["token"]).room_config.agents[0].metadata)
        assert (
            meta["prompt"] == "Help  on the  plan. Unknown: []"
            and meta["first_message"] == "Hello !"
        )


@pytest.mark.django_db(transaction=True)
def test_every_call_gets_its_own_room(post, assistant):
    names = {
        post({"assistant_id": str(assistant.pk)}).json()["data"]["room_name"] for _ in range(3)
    }
    assert len(names) == 3 and Room.objects.count() == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", [None, "rk_000000000000_" + "x" * 43])
def test_401(post, assistant, key):
    response = post({"assistant_id": str(assistant.pk)}, key=key)
    assert response.status_code == 401
    assert response.json() == failure("Invalid or missing Bearer token.")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer a b", "Token abc", "Basic !!!", "Basic YTpi", b"Bearer \xe9"]
)
def test_401_for_odd_authorization_headers(post, assistant, header):
    response = post(
        {"assistant_id": str(assistant.pk)}, key=None, headers={"Authorization": header}
    )
    assert response.status_code == 401
    assert response.json() == failure("Invalid or missing Bearer token.")


@pytest.mark.django_db(transaction=True)
def test_404_unknown_other_project_and_non_uuid_are_identical(post, other_assistant):
    answers = [
        post({"assistant_id": value})
        for value in (str(uuid.uuid4()), str(other_assistant.pk), "not-a-uuid")
    ]
    assert {r.status_code for r in answers} == {404}
    assert all(r.json() == failure("Assistant not found.") for r in answers)
    assert not Room.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "assistant_id: This field is required."),
        ({"assistant_id": 5}, "assistant_id: Must be a string."),
        ({"assistant_id": " "}, "assistant_id: This field may not be blank."),
        (
            {"assistant_id": "x" * 101},
            "assistant_id: Ensure this field has no more than 100 characters.",
        ),
        ("META", "metadata: Must be an object whose values are strings, numbers or booleans."),
        ("NESTED", "metadata: Must be an object whose values are strings, numbers or booleans."),
        ("NULLVALUE", "metadata: Must be an object whose values are strings, numbers or booleans."),
        ([], "Invalid data. Expected a dictionary, but got list."),
    ],
)
def test_422_invalid_bodies(post, assistant, body, message):
    aid = str(assistant.pk)
    body = (
        {
            "META": {"assistant_id": aid, "metadata": ["a"]},
            "NESTED": {"assistant_id": aid, "metadata": {"a": {"b": 1}}},
            "NULLVALUE": {"assistant_id": aid, "metadata": {"a": None}},
        }.get(body, body)
        if isinstance(body, str)
        else body
    )
    response = post(body)
    assert response.status_code == 422
    assert response.json() == failure(message)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("raw", [b"{", b"", b"[" * 100_000, b'{"assistant_id": Infinity}'])
def test_422_malformed_json(post, raw):
    response = post(None, raw=raw)
    assert response.status_code == 422
    body = response.json()
    assert body["success"] is False and body["data"] is None and body["message"]


@pytest.mark.django_db(transaction=True)
def test_metadata_limit_at_n_and_n_plus_1(post, assistant):
    overhead = len('{"name":""}')
    at_limit = {"name": "é" * (WEB_CALL_METADATA_MAX_CHARS - overhead)}
    ok = post({"assistant_id": str(assistant.pk), "metadata": at_limit})
    assert ok.status_code == 200, ok.text
    over = {"name": "é" * (WEB_CALL_METADATA_MAX_CHARS - overhead + 1)}
    refused = post({"assistant_id": str(assistant.pk), "metadata": over})
    assert refused.status_code == 422
    assert refused.json() == failure(
        f"metadata: Must be at most {WEB_CALL_METADATA_MAX_CHARS} characters when serialised "
        "as compact JSON."
    )


@pytest.mark.django_db(transaction=True)
def test_a_template_that_renders_past_livekits_limit_is_refused(post, project):
    greedy = Assistant.objects.create(
        project=project, name="Greedy", dispatch_name="g", prompt_template="{{v}}" * 20000
    )
    response = post({"assistant_id": str(greedy.pk), "metadata": {"v": "x" * 100}})
    assert response.status_code == 422
    assert response.json() == failure(
        "metadata: The assistant's prompt filled with this metadata is too large."
    )
    assert not Room.objects.exists() and not IssuedToken.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_500_when_livekit_is_not_configured(post, assistant, settings):
    settings.LIVEKIT_API_KEY = ""
    response = post({"assistant_id": str(assistant.pk)})
    assert response.status_code == 500
    assert response.json() == failure("LiveKit is not configured for this project.")


@pytest.mark.django_db(transaction=True)
def test_405_in_the_envelope(live_server, api_key):
    auth = {"Authorization": f"Bearer {api_key}"}
    for method in ("GET", "PUT", "PATCH", "DELETE", "OPTIONS"):
        response = httpx.request(method, live_server.url + URL, headers=auth)
        assert response.status_code == 405, method
        assert response.json() == failure(f'Method "{method}" not allowed.')
        assert response.headers["Allow"] == "POST"
    assert httpx.head(live_server.url + URL, headers=auth).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_assistant_id_and_metadata_key_limits_at_n_and_n_plus_1(post, assistant):
    # 100 characters is a valid request naming no assistant; 101 is an invalid body.
    assert post({"assistant_id": "x" * 100}).json() == failure("Assistant not found.")
    assert post({"assistant_id": "x" * 101}).status_code == 422
    aid = str(assistant.pk)
    ok = post({"assistant_id": aid, "metadata": {"k" * 64: "v"}})
    assert ok.status_code == 200, ok.text
    for key in ("k" * 65, "", "tab\there"):
        refused = post({"assistant_id": aid, "metadata": {key: "v"}})
        assert refused.status_code == 422, key
        assert refused.json() == failure(
            "metadata: Keys must be 1 to 64 characters, without control characters."
        )
