"""The real SignalWire JS clients, unchanged, against a served Roomkey.

`@signalwire/js@3.30.0` (`Chat.Client`, relay protocol v3) and `@signalwire/js@3.28.0` (Fabric
chat: HTTP paths plus relay protocol v4) run under Node from tests/interop/js, where
package-lock.json pins them (`make test` runs `npm ci` there). The scripts print one JSON
report; this module checks it.

Without `node` these tests skip, saying so; with ROOMKEY_REQUIRE_NODE=1 (as .ci/run sets) a
missing `node` fails them instead.
"""

import json
import os
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node")


# Session-scoped like chat_server and listed before it, so that a missing `node` is found
# before a server is started for nothing.
@pytest.fixture(scope="session")
def node():
    if NODE is None:
        if os.environ.get("ROOMKEY_REQUIRE_NODE") == "1":
            pytest.fail("ROOMKEY_REQUIRE_NODE=1 but `node` is not on PATH")
        pytest.skip("`node` is not installed: the real @signalwire/js clients cannot run")
    if not (JS / "node_modules" / "sw330").is_dir() or not (JS / "node_modules" / "sw328").is_dir():
        npm = shutil.which("npm")
        assert npm, "node is installed but npm is not: cannot install tests/interop/js"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS, check=True
        )
    return NODE


def run_script(node, script, **env) -> dict:
    done = subprocess.run(
        [node, script],
        cwd=JS,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no report from {script}: {done.stdout}\n{done.stderr}"
    report = json.loads(lines[-1])
    assert done.returncode == 0 and "fatal" not in report, (report.get("fatal"), done.stderr)
    return report


# One channel name in two Unicode normal forms: the same channel to Roomkey.
ROOM = unicodedata.normalize("NFC", "salle-café")
ROOM_NFD = unicodedata.normalize("NFD", ROOM)


def test_chat_client_v3(node, chat_server):
    assert ROOM != ROOM_NFD
    alice = chat_server.mint(
        "alice",
        {ROOM: {"read": True, "write": True}, "readonly": {"read": True, "write": False}},
        state={"status": "here"},
    )
    bob = chat_server.mint("bob", [ROOM_NFD])
    report = run_script(
        node, "chat_v3.js", TOKEN_A=alice, TOKEN_B=bob, CHANNEL=ROOM, CHANNEL_B=ROOM_NFD
    )

    assert report["steps"] == ["subscribed", "published", "done"]
    assert report["allowed"] == {
        ROOM: {"read": True, "write": True},
        "readonly": {"read": True, "write": False},
    }
    from_bob, from_alice = report["received"]
    assert from_bob["content"] == "hello from bob" and from_bob["meta"] == {"mood": "happy"}
    assert from_bob["member"] == {"id": "bob", "channel": ROOM, "state": {}}
    assert from_bob["channel"] == ROOM and from_bob["publishedAt"] > 1.7e12
    # Content that is not a string comes back as the same JSON value.
    assert from_alice["content"] == {"structured": ["json", 1]}
    assert from_alice["member"]["state"] == {"status": "here"}

    # History: newest first, 10 a page, `cursor.after` walks back until `next` is null.
    pages = report["pages"]
    assert [len(p) for p in pages] == [10, 4]
    flat = [c for page in pages for c in page]
    assert flat == [f"history {i}" for i in range(11, -1, -1)] + [
        {"structured": ["json", 1]},
        "hello from bob",
    ]
    assert report["firstCursor"]["before"] is None and report["firstCursor"]["after"]
    assert report["historySample"]["member"]["id"] == "alice"

    members = {m["id"]: m for m in report["members"]}
    assert set(members) == {"alice", "bob"}
    assert members["alice"] == {"id": "alice", "channel": ROOM, "state": {"status": "here"}}
    assert report["updated"] == {"id": "bob", "channel": ROOM, "state": {"typing": True}}
    assert report["bobState"] == {"channels": {ROOM: {"state": {"typing": True}}}}

    assert report["errors"] == {
        "publishReadOnly": "403",
        "subscribeSecret": "403",
        "setOthersState": "403",
    }
    assert report["bobGotAfterUnsubscribe"] == 0


def test_fabric_chat_v28(node, chat_server):
    alice = chat_server.mint("alice-fabric", ["fabric-room"])
    bob = chat_server.mint("bob", ["fabric-room"])
    report = run_script(
        node,
        "fabric_v28.js",
        TOKEN_A=alice,
        TOKEN_B=bob,
        BASE=chat_server.base,
        CHANNEL="fabric-room",
    )

    address = report["address"]
    assert address["name"] == "fabric-room" and address["display_name"] == "fabric-room"
    assert report["byId"] == address
    assert report["join"]["conversation_id"] == address["id"]
    assert report["join"]["member_id"] == "alice-fabric"

    sent = report["sent"]
    for key in ("id", "conversation_id", "user_id", "ts", "details", "type", "subtype", "text"):
        assert key in sent
    assert sent["conversation_id"] == address["id"] and sent["user_id"] == "alice-fabric"
    assert sent["type"] == "message" and sent["subtype"] == "chat"
    assert report["event"] == sent  # the conversation.message event on the relay

    pages = report["pages"]
    assert [p["texts"] for p in pages] == [
        ["bob 4", "bob 3", "bob 2", "bob 1"],
        ["bob 0", "hello fabric"],
    ]
    assert [(p["hasNext"], p["hasPrev"]) for p in pages] == [(True, False), (False, True)]
    assert report["back"] == {
        "texts": ["bob 4", "bob 3", "bob 2", "bob 1"],
        "hasNext": True,
        "hasPrev": False,
    }
    assert report["afterUnsubscribe"] == 0
    assert report["unknownAddress"] == "Error fetching the conversation messages!"

    paths = [(c["method"], c["path"].split("?")[0]) for c in report["http"]]
    assert ("POST", "/api/fabric/messages") in paths
    assert ("POST", "/api/fabric/conversations/join") in paths
    assert ("GET", f"/api/fabric/conversations/{address['id']}/messages") in paths
    assert all(c["host"] == "fabric.roomkey.test" for c in report["http"])
