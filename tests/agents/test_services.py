"""agents.services details the endpoint tests do not reach."""

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError

from agents import services
from agents.models import AgentVersion, VoiceSession
from chat import events
from tests.agents.conftest import make_agent


def test_versions_are_numbered_per_agent(project, agent, version):
    second = services.agent_version_create(agent=agent, prompt="two")
    _, other_first = make_agent(project, name="Other", dispatch_name="o")
    assert (version.number, second.number, other_first.number) == (1, 2, 1)
    assert services.agent_version_publish(version=second) is True
    assert services.agent_version_publish(version=second) is False  # once


def test_active_version_must_be_this_agents_and_published(project, agent, version, draft):
    _, foreign = make_agent(project, name="Other", dispatch_name="o")
    with pytest.raises(services.Unprocessable, match="another agent"):
        services.agent_set_active_version(agent=agent, version=foreign)
    with pytest.raises(services.Unprocessable, match="published"):
        services.agent_set_active_version(agent=agent, version=draft)
    agent.refresh_from_db()
    assert agent.active_version == version


def test_a_stored_message_is_announced_after_commit(
    project, agent, version, django_capture_on_commit_callbacks
):
    # The session's chat channel hears the message, as it hears any chat message: after the
    # transaction that stored it commits, never before.
    session = services.session_token_issue(project=project, agent_id=agent.pk).session
    group = events.channel_group(project.pk, services.voice_session_channel(session))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = services.voice_message_store(session=session, text="hi")

    async def listen_then_commit():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 0.2)  # not before the commit
        for callback in callbacks:
            await sync_to_async(callback)()
        return await asyncio.wait_for(layer.receive(channel), 2)

    event = async_to_sync(listen_then_commit)()
    assert event["type"] == "chat.message" and event["message"]["text"] == "hi"
    assert event["message"]["id"] == str(message.chat_message.id)


def test_session_lifecycle_transitions_happen_once(project, agent, version):
    session = services.session_token_issue(project=project, agent_id=agent.pk).session
    assert services.voice_session_connect(session=session) is True
    assert services.voice_session_connect(session=session) is False
    assert services.voice_session_finish(session=session, reason="first") is True
    assert services.voice_session_finish(session=session, reason="second") is False
    session.refresh_from_db()
    assert (session.status, session.end_reason) == (VoiceSession.ENDED, "first")
    assert services.voice_session_connect(session=session) is False


def test_published_versions_refuse_saves(version):
    assert version.status == AgentVersion.PUBLISHED
    version.first_message = "changed"
    with pytest.raises(ValidationError, match="cannot be changed"):
        version.save()
