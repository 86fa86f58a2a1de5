"""The admin manages agents, versions and assistants, and ends rooms and voice sessions."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from agents import services
from agents.models import AgentVersion, LiveKitConfig, Room, VoiceSession
from tokens import services as token_services
from tokens.models import IssuedToken


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def url(name, *args):
    return reverse(f"admin:agents_{name}", args=args)


def test_changelists_and_change_pages_render(admin_client, agent, version, assistant):
    for name, obj in (("agent", agent), ("agentversion", version), ("assistant", assistant)):
        assert admin_client.get(url(f"{name}_changelist")).status_code == 200
        assert admin_client.get(url(f"{name}_change", obj.pk)).status_code == 200
    for name in ("room", "voicesession", "livekitconfig"):
        assert admin_client.get(url(f"{name}_changelist")).status_code == 200


def test_active_version_choices_are_this_agents_published_versions(
    admin_client, project, agent, version, draft
):
    from tests.agents.conftest import make_agent

    _, foreign = make_agent(project, name="Else", dispatch_name="else")
    page = admin_client.get(url("agent_change", agent.pk))
    choices = {str(v.pk) for v in page.context["adminform"].form.fields["active_version"].queryset}
    assert choices == {str(version.pk)}
    assert str(draft.pk) not in choices and str(foreign.pk) not in choices


def test_adding_a_version_numbers_it_and_publish_freezes_it(admin_client, agent, version):
    response = admin_client.post(
        url("agentversion_add"),
        {"agent": agent.pk, "prompt": "v2 prompt", "first_message": "v2 hi", "config": "{}"},
    )
    assert response.status_code == 302, response.content[:500]
    new = AgentVersion.objects.get(agent=agent, number=2)
    assert new.status == AgentVersion.DRAFT and new.prompt == "v2 prompt"
    # A draft can still be edited...
    edit = admin_client.post(
        url("agentversion_change", new.pk),
        {"prompt": "edited", "first_message": "v2 hi", "config": "{}"},
    )
    assert edit.status_code == 302
    new.refresh_from_db()
    assert new.prompt == "edited"
    # ...publish it, make it active...
    admin_client.post(
        url("agentversion_changelist"), {"action": "publish", "_selected_action": [new.pk]}
    )
    admin_client.post(
        url("agentversion_changelist"), {"action": "make_active", "_selected_action": [new.pk]}
    )
    new.refresh_from_db()
    agent.refresh_from_db()
    assert new.status == AgentVersion.PUBLISHED and new.published_at is not None
    assert agent.active_version == new
    # ...and from then on it cannot change.
    refused = admin_client.post(
        url("agentversion_change", new.pk),
        {"prompt": "sneaky", "first_message": "x", "config": "{}"},
    )
    assert refused.status_code == 403
    new.refresh_from_db()
    assert new.prompt == "edited"
    with pytest.raises(ValidationError):
        new.prompt = "direct"
        new.save()


def test_published_versions_are_never_deleted(admin_client, agent, version, draft):
    assert admin_client.get(url("agentversion_delete", version.pk)).status_code == 403
    assert (
        admin_client.post(url("agentversion_delete", version.pk), {"post": "yes"}).status_code
        == 403
    )
    bulk = {"action": "delete_selected", "_selected_action": [version.pk, draft.pk], "post": "yes"}
    assert admin_client.post(url("agentversion_changelist"), bulk).status_code == 403
    assert AgentVersion.objects.count() == 2
    bulk["_selected_action"] = [draft.pk]
    assert admin_client.post(url("agentversion_changelist"), bulk).status_code == 302
    assert list(AgentVersion.objects.all()) == [version]
    # A draft alone can be deleted from its own page.
    other = services.agent_version_create(agent=agent, prompt="x")
    assert (
        admin_client.post(url("agentversion_delete", other.pk), {"post": "yes"}).status_code == 302
    )
    assert not AgentVersion.objects.filter(pk=other.pk).exists()


def test_a_draft_cannot_be_made_active(admin_client, agent, version, draft):
    response = admin_client.post(
        url("agentversion_changelist"),
        {"action": "make_active", "_selected_action": [draft.pk]},
        follow=True,
    )
    assert "Only a published version can be active." in response.content.decode()
    agent.refresh_from_db()
    assert agent.active_version == version


def test_assistant_preview_renders_the_sample_metadata(admin_client, assistant):
    assistant.preview_metadata = {"name": "Ada", "plan": "gold"}
    assistant.save()
    page = admin_client.get(url("assistant_change", assistant.pk)).content.decode()
    assert "Help Ada on the gold plan. Unknown: []" in page
    assert "Hello Ada!" in page
    assert "name, plan, missing" in page


def test_end_room_revokes_its_tokens(admin_client, api, agent, version):
    body = api.post(
        "/v1/session-token", {"agent_id": str(agent.pk), "transport": "webrtc"}, format="json"
    ).json()
    room = Room.objects.get(name=body["room"])
    page = admin_client.get(url("room_change", room.pk)).content.decode()
    assert "1 (0 revoked)" in page
    response = admin_client.post(
        url("room_changelist"), {"action": "end_rooms", "_selected_action": [room.pk]}, follow=True
    )
    assert "Ended 1 room(s); revoked 1 token(s)." in response.content.decode()
    room.refresh_from_db()
    assert room.ended_at is not None
    assert token_services.token_verify(body["token"]).reason == "revoked"
    assert IssuedToken.objects.get(resource=room.name).revoked_by == "admin:admin"


def test_end_session_ends_it_and_revokes_its_token(admin_client, api, agent, version):
    token = api.post("/v1/session-token", {"agent_id": str(agent.pk)}, format="json").json()[
        "token"
    ]
    session = VoiceSession.objects.get()
    services.voice_message_store(session=session, text="from the socket")
    page = admin_client.get(url("voicesession_change", session.pk)).content.decode()
    assert "from the socket" in page and "Issued" in page
    admin_client.post(
        url("voicesession_changelist"),
        {"action": "end_sessions", "_selected_action": [session.pk]},
    )
    session.refresh_from_db()
    assert session.status == VoiceSession.ENDED and session.end_reason == "ended by admin:admin"
    assert token_services.token_verify(token).reason == "revoked"


def test_livekit_secret_is_write_only(admin_client, project):
    response = admin_client.post(
        url("livekitconfig_add"),
        {
            "project": project.pk,
            "url": "wss://lk.example",
            "api_key": "APIkey",
            "api_secret": "s3cret-" + "x" * 40,
            "token_source_fields": ["room_name"],
        },
    )
    assert response.status_code == 302, response.content[:1000]
    config = LiveKitConfig.objects.get()
    assert config.api_secret == "s3cret-" + "x" * 40 and config.token_source_fields == ["room_name"]
    page = admin_client.get(url("livekitconfig_change", config.pk)).content.decode()
    assert "s3cret-" not in page
    # Saving without typing a secret keeps it.
    admin_client.post(
        url("livekitconfig_change", config.pk),
        {"project": project.pk, "url": "wss://lk2.example", "api_key": "APIkey"},
    )
    config.refresh_from_db()
    assert config.url == "wss://lk2.example" and config.api_secret.startswith("s3cret-")
    # "Clear" drops the pair (the project falls back to the settings)...
    cleared = admin_client.post(
        url("livekitconfig_change", config.pk),
        {"project": project.pk, "url": "", "api_key": "APIkey", "clear_secret": "on"},
    )
    assert cleared.status_code == 302
    config.refresh_from_db()
    assert (config.api_key, config.api_secret) == ("", "")
    # ...and a key without a secret is refused.
    refused = admin_client.post(
        url("livekitconfig_change", config.pk),
        {"project": project.pk, "url": "", "api_key": "lonely"},
    )
    assert refused.status_code == 200
    assert "Set both the LiveKit API key and secret, or neither." in refused.content.decode()
    config.refresh_from_db()
    assert config.api_key == ""


def test_revoking_an_agent_or_assistant_revokes_its_tokens_only(
    admin_client, client, api, agent, version, assistant
):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    def mint(path, body):
        return api.post(path, body, format="json").json()

    ws = mint("/v1/session-token", {"agent_id": str(agent.pk)})["token"]
    rtc = mint("/v1/session-token", {"agent_id": str(agent.pk), "transport": "webrtc"})["token"]
    call = mint("/web_call/get_token", {"assistant_id": str(assistant.pk)})["data"]["token"]

    staff = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_agent"))
    client.force_login(staff)
    assert b"revoke_tokens_for" not in client.get(url("agent_changelist")).content

    response = admin_client.post(
        url("agent_changelist"),
        {"action": "revoke_tokens_for", "_selected_action": [agent.pk]},
        follow=True,
    )
    assert "Revoked 2 token(s) of 1 object(s)." in response.content.decode()
    assert token_services.token_verify(ws).reason == "revoked"
    assert token_services.token_verify(rtc).reason == "revoked"
    assert token_services.token_verify(call).valid  # the assistant's web call is another's

    response = admin_client.post(
        url("assistant_changelist"),
        {"action": "revoke_tokens_for", "_selected_action": [assistant.pk]},
        follow=True,
    )
    assert "Revoked 1 token(s) of 1 object(s)." in response.content.decode()
    assert token_services.token_verify(call).reason == "revoked"
