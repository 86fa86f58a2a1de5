"""Real servers for end-to-end tests: uvicorn subprocesses on the project's ASGI app, as
`make run` serves it. Shared by the e2e, WebSocket and interop tests."""

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
MANAGE = [sys.executable, str(ROOT / "manage.py")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str, **extra) -> dict:
    """The environment of a served process: the given database, DEBUG on (dev defaults)."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **extra,
    }


def prepare_database(env: dict) -> dict:
    """Migrate the served database and load the demo data; returns `seed_demo --json`."""
    subprocess.run([*MANAGE, "migrate", "--noinput", "-v0"], env=env, cwd=ROOT, check=True)
    seeded = subprocess.run(
        [*MANAGE, "seed_demo", "--json"], env=env, cwd=ROOT, check=True, capture_output=True
    )
    return json.loads(seeded.stdout)


def uvicorn_command(port: int, *, log_level="warning") -> list[str]:
    """The command line of a served Roomkey on 127.0.0.1:`port`, as `make run` serves it (same
    WebSocket implementation), minus the static files. Also used by bench/chat_history.py."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ws",
        "websockets-sansio",
        "--lifespan",
        "off",
        "--no-proxy-headers",
        "--log-level",
        log_level,
    ]


@contextmanager
def uvicorn(env: dict, *, port: int | None = None, log_level="warning", stderr=None):
    """Run `uvicorn config.asgi:application` with `env`; yields (base_url, port). `stderr`: a
    file for the server's log (default: this process's)."""
    port = port or free_port()
    command = uvicorn_command(port, log_level=log_level)
    with serving(command, env, port, stderr=stderr) as base:
        yield base, port


@contextmanager
def serving(command: list[str], env: dict, port: int, *, stderr=None):
    """Run `command` (a server listening on 127.0.0.1:`port`) until it answers HTTP; yields
    its base URL, and stops it on the way out."""
    server = subprocess.Popen(command, env=env, cwd=ROOT, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{' '.join(command[-6:])} did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextmanager
def demo_server(tmp_path_factory, name: str):
    """A served app on a fresh SQLite database with the demo data, as `make run` serves it;
    yields (base_url, port, `seed_demo --json`, env)."""
    db = tmp_path_factory.mktemp(name) / "db.sqlite3"
    env = server_env(f"sqlite:///{db}")
    demo = prepare_database(env)
    with uvicorn(env) as (base, port):
        yield base, port, demo, env
