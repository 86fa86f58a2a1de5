"""The chat admin's actions that write need their permission (see tests/admin_permissions.py):
revoking a member's tokens needs the registry's revoke permission; hiding and unhiding a message
need the message's change permission."""

from chat import services
from tests.admin_permissions import ActionPermissionTests, Case
from tests.helpers import mint_chat


def conversation(request):
    project = request.getfixturevalue("project")
    return services.address_create(project=project, name="general").conversation


def member_with_a_token(request):
    member, _ = services.member_join(conversation=conversation(request), member_id="alice")
    mint_chat(request.getfixturevalue("project"), member_id="alice")
    return member.pk


def message(request):
    return services.message_send(conversation=conversation(request), member_id="a", text="x").pk


def hidden_message(request):
    sent = services.message_send(conversation=conversation(request), member_id="a", text="x")
    services.message_hide(message=sent)
    return sent.pk


class TestActionPermissions(ActionPermissionTests):
    cases = [
        Case("chat", "member", "revoke_tokens_for", "revoke", member_with_a_token),
        Case("chat", "message", "hide_messages", "change", message),
        Case("chat", "message", "unhide_messages", "change", hidden_message),
    ]
