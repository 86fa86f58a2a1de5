"""LiveKit's token-source contract at POST /api/v1/livekit/token-source (live_server)."""

import json

import httpx
import pytest
from livekit.api import TokenVerifier

from agents.models import LiveKitConfig
from tokens.models import IssuedToken

URL = "/api/v1/livekit/token-source"


@pytest.fixture
def post(live_server, api_key):
    def call(body, *, key=api_key):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(live_server.url + URL, json=body, headers=headers)

    call.url, call.headers = live_server.url + URL, {"Authorization": f"Bearer {api_key}"}
    return call


@pytest.fixture
def verify(settings):
    return TokenVerifier(settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET).verify


@pytest.mark.django_db(transaction=True)
def test_all_default_fields(post, verify, settings):
    response = post(
        {
            "room_name": "lobby",
            "participant_identity": "alice",
            "participant_name": "Alice",
            "participant_metadata": '{"tier": "gold"}',
            "participant_attributes": {"team": "blue"},
        }
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"server_url", "participant_token"}
    assert body["server_url"] == settings.LIVEKIT_URL
    claims = verify(body["participant_token"])
    assert (claims.identity, claims.name, claims.metadata) == ("alice", "Alice", '{"tier": "gold"}')
    assert claims.attributes == {"team": "blue"}
    assert claims.video.room == "lobby" and claims.video.room_join
    assert claims.video.room_admin is None and claims.video.room_create is None
    assert claims.room_config is None
    assert claims.video.can_publish_sources is None  # any source: the caller's room
    row = IssuedToken.objects.get(kind="livekit")
    assert (row.subject, row.resource) == ("alice", "lobby")


@pytest.mark.django_db(transaction=True)
def test_an_empty_request_gets_server_chosen_room_and_identity(post, verify):
    body = post({}).json()
    claims = verify(body["participant_token"])
    assert claims.identity.startswith("participant_") and claims.video.room.startswith("room_")


@pytest.mark.django_db(transaction=True)
def test_room_config_is_refused_unless_the_project_allows_it(post, verify, project, agent):
    request = {"room_config": {"agents": [{"agent_name": agent.dispatch_name, "metadata": "m"}]}}
    refused = post(request)
    assert refused.status_code == 403
    assert refused.json() == {
        "detail": "This project does not let clients set: room_config.",
        "fields": ["room_config"],
    }
    LiveKitConfig.objects.create(
        project=project,
        token_source_fields=[*LiveKitConfig.DEFAULT_TOKEN_SOURCE_FIELDS, "room_config"],
    )
    allowed = post(request)
    assert allowed.status_code == 201, allowed.text
    [dispatch] = verify(allowed.json()["participant_token"]).room_config.agents
    assert (dispatch.agent_name, dispatch.metadata) == ("support-agent", "m")
    # Only the project's own agents and assistants can be dispatched.
    stranger = post({"room_config": {"agents": [{"agentName": "someone-else"}]}})
    assert stranger.status_code == 400
    assert stranger.json() == {
        "room_config": ["room_config names agents this project does not have: someone-else."]
    }


@pytest.mark.django_db(transaction=True)
def test_a_narrow_allow_list_refuses_the_other_fields(post, project):
    LiveKitConfig.objects.create(project=project, token_source_fields=["room_name"])
    assert post({"room_name": "r"}).status_code == 201
    response = post({"room_name": "r", "participant_identity": "x", "participant_name": "X"})
    assert response.status_code == 403
    assert response.json()["fields"] == ["participant_identity", "participant_name"]
    # null and "" are "not set", and need no permission.
    assert (
        post({"room_name": "r", "participant_identity": "", "participant_name": None}).status_code
        == 201
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("field", "at_limit", "over"),
    [
        ("room_name", "r" * 256, "r" * 257),
        ("participant_identity", "i" * 256, "i" * 257),
        ("participant_name", "n" * 256, "n" * 257),
        ("participant_metadata", "m" * 512 * 1024, "m" * (512 * 1024 + 1)),
        ("participant_attributes", {"k": "v" * (64 * 1024 - 1)}, {"k": "v" * (64 * 1024)}),
    ],
)
def test_livekit_limits_at_n_and_n_plus_1(post, verify, field, at_limit, over):
    ok = post({field: at_limit})
    assert ok.status_code == 201, ok.text[:200]
    verify(ok.json()["participant_token"])
    refused = post({field: over})
    assert refused.status_code == 400
    [message] = refused.json()[field]
    assert "LiveKit's limit" in message
    assert IssuedToken.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_token_source_token_can_be_introspected_even_when_large(post, live_server, api_key):
    token = post({"participant_metadata": "m" * 512 * 1024}).json()["participant_token"]
    assert len(token) > 8 * 1024
    answer = httpx.post(
        live_server.url + "/api/v1/tokens/introspect",
        data={"token": token},
        headers={"Authorization": f"Bearer {api_key}"},
    ).json()
    assert answer["active"] is True and answer["kind"] == "livekit"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"room_name": 5}, "room_name"),
        ({"participant_attributes": {"a": 1}}, "participant_attributes"),
        ({"participant_attributes": "x"}, "participant_attributes"),
        ({"room_config": {"agents": [{"agentName": "a"}], "maxParticipants": 2}}, "room_config"),
        ({"room_config": {"agents": [{"metadata": "no name"}]}}, "room_config"),
        ({"room_config": []}, "room_config"),
    ],
)
def test_400_invalid_fields(post, body, field):
    response = post(body)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.django_db(transaction=True)
def test_401_and_malformed_json(post, live_server, api_key):
    assert post({}, key=None).status_code == 401
    response = httpx.post(
        live_server.url + URL,
        content=b"{",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and "detail" in response.json()


@pytest.mark.django_db(transaction=True)
def test_503_without_livekit_credentials(post, settings):
    settings.LIVEKIT_API_SECRET = ""
    response = post({})
    assert response.status_code == 503
    assert json.loads(response.text) == {"detail": "LiveKit is not configured for this project."}


# --- Rooms Roomkey made: another project's is a 404, an ended one a 409 -----------------------


@pytest.mark.django_db(transaction=True)
def test_another_projects_room_is_a_404_like_an_unknown_object(
    post, verify, project, other_project, other_assistant, assistant
):
    from agents import services

    theirs = services.web_call_issue(
        project=other_project, assistant_id=other_assistant.pk, metadata={}
    ).room
    response = post({"room_name": theirs.name, "participant_identity": "mallory"})
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}
    assert not IssuedToken.objects.filter(project=project).exists()
    # The caller's own room is theirs to join; once ended, no longer.
    mine = services.web_call_issue(project=project, assistant_id=assistant.pk, metadata={}).room
    response = post({"room_name": mine.name, "participant_identity": "bob"})
    assert response.status_code == 201, response.text
    assert verify(response.json()["participant_token"]).video.room == mine.name
    services.room_end(room=mine, by="test")
    response = post({"room_name": mine.name, "participant_identity": "bob"})
    assert response.status_code == 409 and response.json() == {"detail": "The room has ended."}


@pytest.mark.django_db(transaction=True)
def test_a_free_named_room_belongs_to_the_project_that_asked_first(
    post, verify, project, other_project_and_key
):
    """Projects that share the settings' LiveKit server share its room names: a room another
    project's clients asked for is that project's, a 404 like an unknown object, so no key can
    put a participant (or take an identity) in another project's room."""
    from agents import services
    from agents.models import Room

    first = post({"room_name": "lobby", "participant_identity": "alice"})
    assert first.status_code == 201, first.text
    assert verify(first.json()["participant_token"]).video.room == "lobby"
    room = Room.objects.get(name="lobby")
    assert room.project_id == project.pk
    _, their_key = other_project_and_key
    theirs = post({"room_name": "lobby", "participant_identity": "alice"}, key=their_key)
    assert theirs.status_code == 404 and theirs.json() == {"detail": "Not found."}
    assert not IssuedToken.objects.filter(project=other_project_and_key[0]).exists()
    # The same project joins its room again, and the room can be ended like any other:
    # its tokens are revoked and it takes no one new.
    again = post({"room_name": "lobby", "participant_identity": "bob"})
    assert again.status_code == 201
    assert services.room_end(room=room, by="test") == 2
    ended = post({"room_name": "lobby", "participant_identity": "carol"})
    assert ended.status_code == 409


@pytest.mark.django_db(transaction=True)
def test_a_server_chosen_room_is_recorded_for_the_project(post, verify, project):
    from agents.models import Room

    response = post({})
    room = verify(response.json()["participant_token"]).video.room
    assert Room.objects.get(name=room).project_id == project.pk


@pytest.mark.django_db(transaction=True)
def test_metadata_is_free_text_and_attribute_values_are_checked(post, verify):
    pretty = '{\n\t"tier": "gold"\n}\r\n'
    response = post({"participant_metadata": pretty, "participant_attributes": {"a": "x\ny"}})
    assert response.status_code == 201, response.text
    claims = verify(response.json()["participant_token"])
    assert claims.metadata == pretty and claims.attributes == {"a": "x\ny"}
    for body in (
        {"participant_metadata": "bell\x07"},
        {"participant_attributes": {"a": "nul\x00"}},
        {"participant_attributes": {"a": "\ud800"}},
    ):
        response = httpx.post(
            post.url,
            content=json.dumps(body).encode(),
            headers={**post.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 400, body
        assert set(response.json()) == set(body)


@pytest.mark.django_db(transaction=True)
def test_dispatch_count_and_metadata_limits_at_n_and_n_plus_1(post, verify, project, agent):
    LiveKitConfig.objects.create(
        project=project,
        token_source_fields=[*LiveKitConfig.DEFAULT_TOKEN_SOURCE_FIELDS, "room_config"],
    )

    def dispatching(count, metadata=""):
        agents = [{"agentName": agent.dispatch_name, "metadata": metadata}] * count
        return post({"room_config": {"agents": agents}})

    ok = dispatching(8)
    assert ok.status_code == 201, ok.text
    assert len(verify(ok.json()["participant_token"]).room_config.agents) == 8
    assert dispatching(9).status_code == 400
    ok = dispatching(1, "m" * 512 * 1024)
    assert ok.status_code == 201, ok.text[:200]
    refused = dispatching(1, "m" * (512 * 1024 + 1))
    assert refused.status_code == 400
    assert refused.json() == {
        "room_config": ["the agent's dispatch metadata must be at most 512 KiB."]
    }
