"""Call sessions and tool tokens on the served app (migrate, seed_demo, uvicorn), with the
demo's printed `tool_secret` shared with the real signalwire-sdk SessionManager."""

import httpx
import pytest
from signalwire.core.security.session_manager import SessionManager as SdkSessionManager

from tests.servers import demo_server


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with demo_server(tmp_path_factory, "served-calls") as (base, _port, demo, _env):
        yield base, demo


def test_demo_tool_secret_works_both_ways(served):
    base, demo = served
    sdk = SdkSessionManager(secret_key=demo["tool_secret"])
    auth = (demo["project_id"], demo["api_key"])  # Basic, as SignalWire clients send
    with httpx.Client(base_url=base, auth=auth, timeout=10) as http:
        call_id = sdk.create_session()  # the SDK's random id
        assert http.post("/api/v1/sessions", json={"call_id": call_id}).status_code == 201
        ours = http.post(
            f"/api/v1/sessions/{call_id}/tool-tokens", json={"function": "lookup", "max_uses": 1}
        ).json()["token"]
        assert sdk.validate_tool_token("lookup", ours, call_id)

        def validate(token):
            body = {"call_id": call_id, "function": "lookup", "token": token}
            return http.post("/api/v1/tool-tokens/validate", json=body).json()

        theirs = sdk.generate_token("lookup", call_id)
        assert validate(theirs) == {"valid": True, "reason": None}
        assert validate(ours) == {"valid": True, "reason": None}
        assert validate(ours) == {"valid": False, "reason": "used_up"}
        assert http.post(f"/api/v1/sessions/{call_id}/end").json()["status"] == "ended"
        assert validate(theirs) == {"valid": False, "reason": "session_ended"}
        big = http.post(
            "/api/v1/tool-tokens/validate",
            content=b"x" * (1024 * 1024 + 1),
            headers={"Content-Type": "application/json"},
        )
        assert big.status_code == 413
