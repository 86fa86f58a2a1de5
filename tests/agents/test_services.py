"""agents.services details the endpoint tests do not reach."""

import pytest
from django.core.exceptions import ValidationError

from agents import services
from agents.models import AgentVersion, VoiceSession
from agents.signals import voice_session_message
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
    issued = services.session_token_issue(project=project, agent_id=agent.pk)
    heard = []

    def receiver(sender, session, message, **kwargs):
        heard.append((session.pk, message.text))

    voice_session_message.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            services.voice_message_store(session=issued.session, text="hi")
        assert heard == []  # not before the commit
        for callback in callbacks:
            callback()
    finally:
        voice_session_message.disconnect(receiver)
    assert heard == [(issued.session.pk, "hi")]


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
