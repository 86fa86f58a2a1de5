"""Fixtures of the call-session and tool-token tests (issue 5)."""

import pytest

from agents import services, tooltokens
from agents.sessionmanager import SessionManager


@pytest.fixture(autouse=True)
def _fresh_tool_state():
    # What validation caches per process (sessions, token state, secrets); each test starts
    # from the database.
    tooltokens.forget_all()
    yield
    tooltokens.forget_all()


@pytest.fixture
def secret(project) -> str:
    return services.tool_secret_get_or_create(project=project).secret


@pytest.fixture
def sm(project) -> SessionManager:
    return SessionManager(project=project)


@pytest.fixture
def session(project):
    return services.call_session_create(project=project, call_id="call-1")
