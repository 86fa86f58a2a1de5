"""The agents admin's actions that write need their permission (see tests/admin_permissions.py):
ending rooms, voice and call sessions and revoking tokens need the registry's revoke permission;
publishing, making active and rotating a tool secret need the model's change permission."""

from agents import services
from agents.models import Room, ToolSecret, VoiceSession
from tests.admin_permissions import ActionPermissionTests, Case


def session_token(request, body):
    api = request.getfixturevalue("api")
    response = api.post("/v1/session-token", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def agent_with_a_token(request):
    agent = request.getfixturevalue("agent")
    session_token(request, {"agent_id": str(agent.pk)})
    return agent.pk


def assistant_with_a_token(request):
    assistant = request.getfixturevalue("assistant")
    api = request.getfixturevalue("api")
    response = api.post("/web_call/get_token", {"assistant_id": str(assistant.pk)}, format="json")
    assert response.status_code == 200, response.content
    return assistant.pk


def draft(request):
    return request.getfixturevalue("draft").pk


def published_inactive_version(request):
    version = services.agent_version_create(agent=request.getfixturevalue("agent"), prompt="v2")
    services.agent_version_publish(version=version)
    return version.pk


def room(request):
    agent = request.getfixturevalue("agent")
    body = session_token(request, {"agent_id": str(agent.pk), "transport": "webrtc"})
    return Room.objects.get(name=body["room"]).pk


def voice_session(request):
    session_token(request, {"agent_id": str(request.getfixturevalue("agent").pk)})
    return VoiceSession.objects.get().pk


def call_session(request):
    return request.getfixturevalue("session").pk


def call_session_with_a_tool_token(request):
    session = request.getfixturevalue("session")
    services.tool_token_issue(session=session, function="fn")
    return session.pk


def tool_secret(request):
    request.getfixturevalue("secret")
    return ToolSecret.objects.get(project=request.getfixturevalue("project")).pk


class TestActionPermissions(ActionPermissionTests):
    cases = [
        Case("agents", "agent", "revoke_tokens_for", "revoke", agent_with_a_token),
        Case("agents", "assistant", "revoke_tokens_for", "revoke", assistant_with_a_token),
        Case("agents", "agentversion", "publish", "change", draft),
        Case("agents", "agentversion", "make_active", "change", published_inactive_version),
        Case("agents", "room", "end_rooms", "revoke", room),
        Case("agents", "voicesession", "end_sessions", "revoke", voice_session),
        Case("agents", "callsession", "end_sessions", "revoke", call_session),
        Case("agents", "callsession", "revoke_tokens", "revoke", call_session_with_a_tool_token),
        Case("agents", "toolsecret", "rotate", "change", tool_secret),
    ]
