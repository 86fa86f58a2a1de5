"""The real-client tests skip, visibly, only when `node` is missing, and fail instead when
ROOMKEY_REQUIRE_NODE=1 (as in CI). Checked by running them where no `node` is on PATH."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_without_node(**env):
    path = os.pathsep.join(
        d for d in os.environ.get("PATH", "").split(os.pathsep) if not (Path(d) / "node").exists()
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/interop/test_signalwire_js.py",
        ],
        cwd=ROOT,
        env={**os.environ, "PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("required", "outcome"), [("0", "2 skipped"), ("1", "2 errors")])
def test_missing_node(required, outcome):
    done = _run_without_node(ROOMKEY_REQUIRE_NODE=required)
    assert outcome in done.stdout, done.stdout
    reason = "`node` is not installed" if required == "0" else "ROOMKEY_REQUIRE_NODE=1"
    assert reason in done.stdout
