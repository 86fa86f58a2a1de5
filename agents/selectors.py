"""Reads of the agents app, tenant-scoped: another project's object is never found."""

# --- Call sessions (issue 5) --------------------------------------------------------------

from tokens.models import Project

from .models import Agent, CallSession


def call_sessions_for(*, project: Project):
    return CallSession.objects.filter(project=project)


def call_session_get(*, project: Project, call_id: str) -> CallSession | None:
    return call_sessions_for(project=project).filter(call_id=call_id).first()


def agent_for(*, project: Project, agent_id) -> Agent | None:
    return Agent.objects.filter(project=project, pk=agent_id).first()
