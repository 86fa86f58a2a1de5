"""Commands (through call_command) and the admin for call sessions and tool tokens."""

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone
from signalwire.core.security.session_manager import SessionManager as SdkSessionManager

from agents import services
from agents.models import CallSession, ToolSecret
from tests.helpers import forge_chat_jwt, mint_chat
from tokens import services as token_services
from tokens.models import IssuedToken


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def debug(token) -> dict:
    return json.loads(run("debugtoken", token, "--json"))


# --- debugtoken ---------------------------------------------------------------------------


def test_debugtoken_tool_token(project, session):
    issued = services.tool_token_issue(session=session, function="fn")
    report = debug(issued.token)
    assert report["kind"] == "tool" and report["valid"] is True and report["reason"] is None
    assert report["signature_checked"] is True
    assert report["claims"]["call_id"] == "call-1" and report["claims"]["function"] == "fn"
    assert report["jti"] == issued.row.pk and report["project_id"] == str(project.pk)

    services.call_session_end(session=session, by="test")
    report = debug(issued.token)
    assert report["valid"] is False and report["reason"] == "revoked"
    assert report["registry"]["revoke_reason"] == "session ended"
    text = run("debugtoken", issued.token)
    assert "kind:" in text and "tool" in text and "session ended" in text


def test_debugtoken_used_up_tool_token(project, session):
    issued = services.tool_token_issue(session=session, function="fn", max_uses=1)
    services.tool_token_validate(
        project=project, call_id="call-1", function="fn", token=issued.token
    )
    report = debug(issued.token)
    assert report["valid"] is False and report["registry"]["revoke_reason"] == "used up"


def test_debugtoken_sdk_minted_tool_token(project, session, secret):
    token = SdkSessionManager(secret_key=secret).generate_token("fn", "call-1")
    report = debug(token)
    assert report["kind"] == "tool" and report["valid"] is False and report["reason"] == "unknown"
    assert report["signature_checked"] is False
    assert report["unverified"]["components"]["function"] == "fn"


def test_debugtoken_chat_token(project):
    issued = mint_chat(project, member_id="alice")
    report = debug(issued.token)
    assert report["kind"] == "chat" and report["valid"] is True
    assert report["subject"] == "alice" and report["claims"]["iss"] == str(project.pk)
    token_services.token_revoke(jti=issued.row.jti, reason="testing")
    report = debug(issued.token)
    assert report["reason"] == "revoked" and report["registry"]["revoke_reason"] == "testing"


def test_debugtoken_unregistered_chat_jwt(project):
    report = debug(forge_chat_jwt(project))
    assert report["kind"] == "chat" and report["reason"] == "unknown"


def test_debugtoken_expired_chat_token(project):
    token = forge_chat_jwt(project, exp=int(timezone.now().timestamp()) - 5)
    report = debug(token)
    assert report["reason"] == "expired"


def test_debugtoken_voice_and_livekit_tokens(project, agent, version, assistant):
    voice = services.session_token_issue(project=project, agent_id=agent.pk)
    report = debug(voice.token)
    assert report["kind"] == "voice" and report["valid"] is True
    assert report["claims"]["agent_id"] == str(agent.pk)
    assert report["subject"] == str(voice.session.pk)
    webrtc = services.session_token_issue(project=project, agent_id=agent.pk, transport="webrtc")
    report = debug(webrtc.token)
    assert report["kind"] == "livekit" and report["valid"] is True
    assert report["subject"] == webrtc.identity
    assert report["claims"]["video"]["room"] == webrtc.room
    call = services.web_call_issue(project=project, assistant_id=assistant.pk, metadata={})
    token_services.token_revoke(jti=debug(call.token)["jti"], reason="testing")
    report = debug(call.token)
    assert report["kind"] == "livekit" and report["reason"] == "revoked"
    assert report["registry"]["resource"] == call.room.name


def test_debugtoken_labels_line_up(project, session):
    issued = services.tool_token_issue(session=session, function="fn")
    lines = run("debugtoken", issued.token).splitlines()
    labelled = [line for line in lines if re.match(r"^[a-z_]+:\s", line)]
    assert [line.split(":")[0] for line in labelled] == [
        "kind",
        "valid",
        "jti",
        "project_id",
        "subject",
        "issued_at",
        "expires_at",
    ]
    # Every value starts in the same column, one space after the longest label.
    assert {len(line) - len(line[line.index(":") + 1 :].lstrip()) for line in labelled} == {12}


@pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "YWJj", "x" * 10240])
def test_debugtoken_garbage(db, garbage):
    report = debug(garbage)
    assert report["valid"] is False and report["reason"] in ("malformed", "oversize")


# --- clearcallsessions and rotatetoolsecret -----------------------------------------------


def test_clearcallsessions(project, session, settings):
    issued = services.tool_token_issue(session=session, function="fn")
    CallSession.objects.filter(pk=session.pk).update(expires_at=timezone.now())
    out = run("clearcallsessions")
    assert "Ended 1 expired call session(s); deleted 0" in out
    assert IssuedToken.objects.get(pk=issued.row.pk).revoked_at is not None
    CallSession.objects.filter(pk=session.pk).update(ended_at=timezone.now() - timedelta(days=8))
    out = run("clearcallsessions")
    assert "Ended 0 expired call session(s); deleted 1" in out
    assert not CallSession.objects.exists() and not IssuedToken.objects.exists()


def test_django_clearsessions_is_not_shadowed(db):
    from django.core.management import get_commands

    assert get_commands()["clearsessions"] == "django.contrib.sessions"
    assert get_commands()["clearcallsessions"] == "agents"


def test_rotatetoolsecret(project, secret):
    result = json.loads(run("rotatetoolsecret", "--project", "Acme", "--json"))
    assert result["project_id"] == str(project.pk)
    assert result["tool_secret"] != secret and result["previous_valid_until"]
    row = ToolSecret.objects.get(project=project)
    assert (row.secret, row.previous_secret) == (result["tool_secret"], secret)
    text = run("rotatetoolsecret", "--project", str(project.pk))
    assert ToolSecret.objects.get(project=project).secret in text
    with pytest.raises(CommandError):
        run("rotatetoolsecret", "--project", "nope")


def test_seed_demo_prints_the_tool_secret(db, settings):
    settings.DEBUG = True
    first = json.loads(run("seed_demo", "--json"))
    second = json.loads(run("seed_demo", "--json"))
    assert re.fullmatch(r"[0-9a-f]{64}", first["tool_secret"])
    assert first["tool_secret"] == second["tool_secret"]  # stored, not rotated by a re-run
    assert ToolSecret.objects.get(project_id=first["project_id"]).secret == first["tool_secret"]
    assert first["tool_secret"] in run("seed_demo")


# --- Admin --------------------------------------------------------------------------------


@pytest.fixture
def staff(client, db):
    user = get_user_model().objects.create_superuser("staff", "s@example.com", "pw-123456!")
    client.force_login(user)
    return client


def test_admin_lists_sessions_with_metadata_and_tokens(staff, project, session):
    services.call_session_metadata_update(session=session, values={"customer": "Ada"})
    issued = services.tool_token_issue(session=session, function="lookup", max_uses=2)
    listing = staff.get("/admin/agents/callsession/")
    assert listing.status_code == 200 and "call-1" in listing.text
    page = staff.get(f"/admin/agents/callsession/{session.pk}/change/")
    assert page.status_code == 200
    assert "Ada" in page.text and issued.row.pk in page.text and "lookup" in page.text
    # The token itself and the secret never appear.
    assert issued.token not in page.text
    assert ToolSecret.objects.get(project=project).secret not in page.text
    for status in ("open", "expired", "ended"):
        assert staff.get(f"/admin/agents/callsession/?status={status}").status_code == 200


def test_admin_actions(staff, project, session):
    other = services.call_session_create(project=project, call_id="call-2")
    t1 = services.tool_token_issue(session=session, function="fn")
    t2 = services.tool_token_issue(session=other, function="fn")
    response = staff.post(
        "/admin/agents/callsession/",
        {"action": "revoke_tokens", "_selected_action": [other.pk]},
        follow=True,
    )
    assert "Revoked 1 token(s)" in response.text
    assert IssuedToken.objects.get(pk=t2.row.pk).revoke_reason == "revoked in the admin"
    assert CallSession.objects.get(pk=other.pk).ended_at is None
    response = staff.post(
        "/admin/agents/callsession/",
        {"action": "end_sessions", "_selected_action": [session.pk]},
        follow=True,
    )
    assert "Ended 1 session(s)" in response.text
    assert CallSession.objects.get(pk=session.pk).ended_at is not None
    assert IssuedToken.objects.get(pk=t1.row.pk).revoked_by == "admin:staff"


def test_admin_rotates_the_tool_secret_and_shows_it_once(staff, project, secret):
    row = ToolSecret.objects.get(project=project)
    page = staff.get(f"/admin/agents/toolsecret/{row.pk}/change/")
    assert page.status_code == 200 and secret not in page.text
    response = staff.post(
        "/admin/agents/toolsecret/",
        {"action": "rotate", "_selected_action": [row.pk]},
        follow=True,
    )
    new = ToolSecret.objects.get(project=project).secret
    assert new != secret and new in response.text
    assert new not in staff.get("/admin/agents/toolsecret/").text
