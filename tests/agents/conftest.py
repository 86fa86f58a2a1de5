"""Fixtures of the agents tests: agents, versions and assistants, call sessions and tool
secrets, made through the services."""

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


class LiveHttp:
    """APIClient's calls (`post(url, data, format=…, content_type=…)`, get, put, patch,
    delete), sent over real HTTP to a live server with httpx; key None sends no header."""

    def __init__(self, base_url, key=None):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(base_url=base_url, headers=headers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.client.close()

    def _send(self, method, url, data=None, content_type=None):
        if data is None:
            return self.client.request(method, url)
        if content_type is not None:
            if isinstance(data, str):
                data = data.encode()
            return self.client.request(
                method, url, content=data, headers={"Content-Type": content_type}
            )
        return self.client.request(method, url, json=data)

    def get(self, url):
        return self._send("GET", url)

    def post(self, url, data=None, format=None, content_type=None):
        return self._send("POST", url, data, content_type)

    def put(self, url, data=None, format=None, content_type=None):
        return self._send("PUT", url, data, content_type)

    def patch(self, url, data=None, format=None, content_type=None):
        return self._send("PATCH", url, data, content_type)

    def delete(self, url, data=None, format=None, content_type=None):
        return self._send("DELETE", url, data, content_type)


@pytest.fixture
def live_api(live_server, api_key):
    """The project's API key, over real HTTP (LiveHttp)."""
    with LiveHttp(live_server.url, api_key) as http:
        yield http


@pytest.fixture
def live_client_for(live_server):
    """live_client_for(key=None) -> LiveHttp with that key (none: no Authorization)."""
    made = []

    def make(key=None):
        made.append(LiveHttp(live_server.url, key))
        return made[-1]

    yield make
    for http in made:
        http.client.close()


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
