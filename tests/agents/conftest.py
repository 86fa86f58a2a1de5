"""Fixtures of the agents tests: agents, versions and assistants (issue 3), call sessions and
tool secrets (issue 5), made through the services."""

import httpx
import pytest

from agents import services, tooltokens
from agents.models import Agent, Assistant
from agents.sessionmanager import SessionManager


def make_agent(project, *, name="Support", dispatch_name="support-agent", publish=True):
    agent = Agent.objects.create(project=project, name=name, dispatch_name=dispatch_name)
    version = services.agent_version_create(
        agent=agent, prompt="You are support.", first_message="Hi, support here."
    )
    if publish:
        services.agent_version_publish(version=version)
        version.refresh_from_db()
        services.agent_set_active_version(agent=agent, version=version)
    return agent, version


@pytest.fixture
def live_post(live_server, api_key):
    """live_post(path) -> post(body, *, key, raw, headers): POST JSON (or `raw` bytes) to the
    live server with `Authorization: Bearer <key>` (none when key is None)."""

    def for_path(path):
        def call(body, *, key=api_key, raw=None, headers=None):
            sent = {"Authorization": f"Bearer {key}"} if key else {}
            sent.update(headers or {})
            if raw is not None:
                sent.setdefault("Content-Type", "application/json")
                return httpx.post(live_server.url + path, content=raw, headers=sent)
            return httpx.post(live_server.url + path, json=body, headers=sent)

        return call

    return for_path


@pytest.fixture
def agent_and_version(project):
    return make_agent(project)


@pytest.fixture
def agent(agent_and_version):
    return agent_and_version[0]


@pytest.fixture
def version(agent_and_version):
    return agent_and_version[1]


@pytest.fixture
def draft(agent):
    return services.agent_version_create(agent=agent, prompt="draft prompt", first_message="d")


@pytest.fixture
def assistant(project):
    return Assistant.objects.create(
        project=project,
        name="Concierge",
        dispatch_name="concierge",
        prompt_template="Help {{name}} on the {{ plan }} plan. Unknown: [{{missing}}]",
        first_message_template="Hello {{name}}!",
    )


@pytest.fixture
def other_project(other_project_and_key):
    return other_project_and_key[0]


@pytest.fixture
def other_agent_and_version(other_project):
    return make_agent(other_project, dispatch_name="other-agent")


@pytest.fixture
def other_assistant(other_project):
    return Assistant.objects.create(
        project=other_project, name="Theirs", dispatch_name="theirs", prompt_template="x"
    )


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
