"""The chat demo page in a real browser: headless Chromium (Debian's `chromium` package),
driven by Playwright (npm `playwright-core`, pinned by tests/browser/package-lock.json; it
downloads no browser), against the app served by uvicorn as `make run` serves it.

Two tabs join as two members; a message typed in one appears in the other; a third tab sees
both in its history. With REDIS_URL set the two tabs are served by two server processes.

Skipped, with the reason, when node or chromium is missing; failed instead when
ROOMKEY_REQUIRE_BROWSER=1 (CI sets it).
"""

import json
import os
import shutil
import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.servers import ROOT, prepare_database, server_env, uvicorn

BROWSER_DIR = ROOT / "tests" / "browser"
REQUIRED = os.environ.get("ROOMKEY_REQUIRE_BROWSER") == "1"


def _unavailable(reason: str):
    if REQUIRED:
        pytest.fail(f"{reason} (ROOMKEY_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def chromium_path() -> str | None:
    configured = os.environ.get("ROOMKEY_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser_tools():
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not installed (apt-get install nodejs npm)")
    chromium = chromium_path()
    if chromium is None:
        _unavailable(
            "chromium is not installed (apt-get install chromium), or ROOMKEY_CHROMIUM names "
            "no file"
        )
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            _unavailable("npm is not installed to install playwright-core")
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=BROWSER_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            _unavailable(f"npm ci failed in tests/browser: {done.stderr[-500:]}")
    return node, chromium


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Base URLs: two server processes sharing the channel layer when REDIS_URL is set (the
    tabs then chat across processes), else one."""
    db = tmp_path_factory.mktemp("demo") / "db.sqlite3"
    env = server_env(f"sqlite:///{db}")
    prepare_database(env)
    with ExitStack() as stack:
        count = 2 if os.environ.get("REDIS_URL") else 1
        yield [stack.enter_context(uvicorn(env))[0] for _ in range(count)]


def test_two_tabs_chat_through_the_relay(browser_tools, served, tmp_path):
    node, chromium = browser_tools
    shot = os.environ.get("ROOMKEY_DEMO_SCREENSHOT") or str(tmp_path / "demo.png")
    result = subprocess.run(
        [node, str(BROWSER_DIR / "chat_demo.js"), served[0], chromium, shot, *served[1:]],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-3000:] or result.stdout[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    texts = {tab: [m["text"] for m in seen[tab]] for tab in ("alice", "bob", "carol")}
    for tab in ("alice", "bob", "carol"):
        assert any(t.startswith("hello from alice") for t in texts[tab]), (tab, texts)
        assert any(t.startswith("and hello from bob") for t in texts[tab]), (tab, texts)
    assert Path(shot).stat().st_size > 0
