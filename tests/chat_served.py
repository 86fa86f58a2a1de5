"""A served Roomkey for the chat relay's end-to-end tests (issue 4): uvicorn on its own
database (a SQLite file, or a fresh PostgreSQL database beside the test database when
DATABASE_URL is PostgreSQL), with the demo project and a second project, sharing REDIS_URL
with the test process when it is set. Session-scoped: one server for every relay, Fabric
and real-client test."""

import json
import os
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.servers import MANAGE, ROOT, prepare_database, server_env, uvicorn

# Short on purpose: the auth-timeout test waits this long.
AUTH_TIMEOUT_SECONDS = 1.0


@contextmanager
def served_database(tmp_path_factory, suffix: str):
    """A database URL for served processes, dropped afterwards when it is PostgreSQL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp_path_factory.mktemp('served') / 'db.sqlite3'}"
        return
    import psycopg

    parts = urlsplit(url)
    # The pid keeps concurrent test sessions (and the suite's own pytest subprocesses) apart.
    name = f"{parts.path.lstrip('/') or 'roomkey'}_served_{suffix}_{os.getpid()}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class ChatServer:
    base: str
    port: int
    env: dict
    project_id: str
    api_key: str
    other_project_id: str
    other_api_key: str
    agent_id: str = ""  # the demo agent (voice-session tokens)
    extra: list = field(default_factory=list)

    @property
    def relay(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/relay/ws"

    def mint(self, member_id="alice", channels=None, *, other=False, state=None, ttl=5) -> str:
        key = self.other_api_key if other else self.api_key
        body = {"ttl": ttl, "channels": channels or ["general"], "member_id": member_id}
        if state is not None:
            body["state"] = state
        response = httpx.post(
            self.base + "/api/chat/tokens",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def revoke(self, token: str, *, base: str | None = None, other=False) -> None:
        key = self.other_api_key if other else self.api_key
        response = httpx.post(
            (base or self.base) + "/api/v1/tokens/revoke",
            json={"token": token},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.text

    @contextmanager
    def second_process(self):
        """Another uvicorn on the same database (and Redis): (base, port)."""
        with uvicorn(self.env) as served:
            yield served


@pytest.fixture(scope="session")
def chat_server(tmp_path_factory):
    with served_database(tmp_path_factory, "chat") as database_url:
        yield from _serve(database_url)


def _serve(database_url):
    env = server_env(database_url, ROOMKEY_CHAT_AUTH_TIMEOUT_SECONDS=str(AUTH_TIMEOUT_SECONDS))
    demo = prepare_database(env)
    other = json.loads(
        subprocess.run(
            [*MANAGE, "createproject", "Other", "--json"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
    )
    with uvicorn(env) as (base, port):
        yield ChatServer(
            base=base,
            port=port,
            env=env,
            project_id=demo["project_id"],
            api_key=demo["api_key"],
            other_project_id=other["project_id"],
            other_api_key=other["api_key"],
            agent_id=demo["agent_id"],
        )
