"""Served Roomkey with small limits, for the limits' end-to-end tests: uvicorn on its own
database (tests.chat_served.served_database), two processes sharing Redis when REDIS_URL is
set (a limit must hold across them), one process otherwise.

Each test isolates its counters by its own client addresses (127.0.x.y: Linux routes all of
127/8 to loopback, and the server sees the source address) and its own API keys, made at
setup in one `manage.py shell`, with projects whose own limits (ProjectLimits) are set there.
"""

import itertools
import json
import os
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import connect

from tests.chat_served import served_database
from tests.servers import MANAGE, ROOT, prepare_database, server_env, uvicorn

# The env of the served processes: every limit small enough to reach in a test.
LIMITS_ENV = {
    "ROOMKEY_RATES": (
        "issue=3/min,validate=3/min,introspect=3/min,revoke=3/min,chat=3/min,api=50/min"
    ),
    "ROOMKEY_ADDRESS_RATES": (
        "issue=100/min,validate=100/min,introspect=100/min,revoke=100/min,chat=100/min,api=4/min"
    ),
    "ROOMKEY_FAILED_AUTH_RATE": "3/min",
    "ROOMKEY_CONNECT_RATE": "3/min",
    "ROOMKEY_RELAY_REQUEST_RATE": "4/min",
    "ROOMKEY_VOICE_FRAME_RATE": "3/min",
    "ROOMKEY_SOCKET_LEASE_SECONDS": "3",
}

# Projects made at setup, with their own limits (ProjectLimits fields).
PROJECTS = {
    "chat-quota": {"max_chat_sockets": 2},
    "voice-quota": {"max_voice_sockets": 1},
    "voice-length": {"max_voice_session_seconds": 2},
    "call-quota": {"max_call_sessions": 2},
    "own-rate": {"issue_rate": "5/min"},
    "lease": {"max_chat_sockets": 1},
}

_SETUP = """
import json
from agents.demo import seed_demo_agents
from limits.models import ProjectLimits
from tokens import services
from tokens.selectors import demo_project

demo = demo_project()
out = {"keys": [services.api_key_create(project=demo).raw for _ in range(KEYS)], "projects": {}}
for name, fields in PROJECTS.items():
    project, key = services.project_create(name=name)
    ProjectLimits.objects.filter(pk=project.pk).update(**fields)
    made = seed_demo_agents(None, project=project)
    out["projects"][name] = {"id": str(project.pk), "key": key.raw, **made}
print(json.dumps(out))
"""

_addresses = (f"127.0.{a}.{b}" for a, b in itertools.product(range(10, 250), range(2, 250)))


def new_address() -> str:
    """A client address no other test has used."""
    return next(_addresses)


@dataclass
class Limited:
    bases: list[str]
    ports: list[int]
    env: dict
    demo: dict
    keys: list[str]
    projects: dict
    _keys: itertools.count = field(default_factory=itertools.count)

    def key(self) -> str:
        """An API key of the demo project no other test has used."""
        return self.keys[next(self._keys)]

    def http(self, address: str, *, key: str | None = None, server: int = 0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(
            base_url=self.bases[server % len(self.bases)],
            transport=httpx.HTTPTransport(local_address=address),
            headers=headers,
            timeout=10,
        )

    def clients(self, address: str, *, key: str | None = None) -> list[httpx.Client]:
        """One client per server process, all from `address`: requests alternate between the
        processes, so a limit is seen to hold across them."""
        return [self.http(address, key=key, server=i) for i in range(len(self.bases))]

    def ws(self, path: str, address: str, *, server: int = 0):
        port = self.ports[server % len(self.ports)]
        return connect(f"ws://127.0.0.1:{port}{path}", local_addr=(address, 0))

    def shell(self, code: str):
        done = subprocess.run(
            [*MANAGE, "shell", "-c", code], env=self.env, cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])


def serve_limited(tmp_path_factory, *, keys: int = 60, env: dict | None = None):
    """Yields a Limited: two processes when REDIS_URL is set, else one."""
    with served_database(tmp_path_factory, "limits") as database_url:
        served_env = server_env(
            database_url,
            **LIMITS_ENV,
            ROOMKEY_LIMITS_PREFIX=f"rk:limits-test:{os.getpid()}:",
            **(env or {}),
        )
        demo = prepare_database(served_env)
        code = _SETUP.replace("KEYS", str(keys)).replace("PROJECTS", repr(PROJECTS))
        done = subprocess.run(
            [*MANAGE, "shell", "-c", code], env=served_env, cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        made = json.loads(done.stdout.strip().splitlines()[-1])
        processes = 2 if os.environ.get("REDIS_URL") else 1
        with ExitStack() as stack:
            served = [stack.enter_context(uvicorn(served_env)) for _ in range(processes)]
            yield Limited(
                bases=[base for base, _ in served],
                ports=[port for _, port in served],
                env=served_env,
                demo=demo,
                keys=made["keys"],
                projects=made["projects"],
            )
