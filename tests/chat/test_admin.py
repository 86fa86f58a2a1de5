"""The chat admin: addresses (made and deleted through the services), conversations with their
newest messages (read-only, newest first) and members, and the hide / unhide actions."""

import unicodedata

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from chat import services
from chat.admin import INLINE_MESSAGES
from chat.models import Address, Conversation, Member, Message


def url(name, *args):
    return reverse(f"admin:chat_{name}", args=args)


@pytest.fixture
def general(project):
    return services.address_create(project=project, name="general")


@pytest.mark.django_db
def test_add_address_normalises_and_checks_the_name(admin_client, project):
    decomposed = unicodedata.normalize("NFD", "café")
    response = admin_client.post(
        url("address_add"), {"project": project.pk, "name": decomposed, "display_name": "Café"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    address = Address.objects.get()
    assert address.name == unicodedata.normalize("NFC", "café")
    assert Conversation.objects.filter(pk=address.pk).exists()  # made by the service

    for bad in ["sw_x", "a\u202eb", "x" * 251, unicodedata.normalize("NFC", "café")]:
        response = admin_client.post(url("address_add"), {"project": project.pk, "name": bad})
        assert response.status_code == 200, bad  # the form again, with its error
        assert b"errorlist" in response.content
    assert Address.objects.count() == 1


@pytest.mark.django_db
def test_address_name_is_fixed_display_name_editable(admin_client, general):
    page = admin_client.get(url("address_change", general.pk))
    assert page.status_code == 200
    response = admin_client.post(
        url("address_change", general.pk),
        {"name": "renamed", "display_name": "General chat"},
    )
    assert response.status_code == 302
    general.refresh_from_db()
    assert general.name == "general" and general.display_name == "General chat"


@pytest.mark.django_db
def test_deleting_an_address_summarises_and_deletes_its_history(admin_client, general):
    conversation = general.conversation
    for i in range(3):
        services.message_send(conversation=conversation, member_id="alice", text=f"m{i}")
    services.member_join(conversation=conversation, member_id="alice")
    confirm = admin_client.get(url("address_delete", general.pk))
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "general (with its conversation, members and messages)" in text
    assert "Messages: 3" in text and "Members: 1" in text and "Conversations: 1" in text
    done = admin_client.post(url("address_delete", general.pk), {"post": "yes"})
    assert done.status_code == 302
    assert not Address.objects.exists()
    assert not Message.objects.exists() and not Member.objects.exists()


@pytest.mark.django_db
def test_conversation_page_shows_newest_messages_first(admin_client, general):
    conversation = general.conversation
    total = INLINE_MESSAGES + 5
    for i in range(total):
        services.message_send(conversation=conversation, member_id="alice", text=f"msg-{i:03d}")
    services.member_join(conversation=conversation, member_id="alice", state={"name": "Alice"})
    page = admin_client.get(url("conversation_change", conversation.pk))
    assert page.status_code == 200
    html = page.content.decode()
    shown = [i for i in range(total) if f"msg-{i:03d}" in html]
    assert shown == list(range(total - INLINE_MESSAGES, total))
    positions = [html.index(f"msg-{i:03d}") for i in shown]
    assert positions == sorted(positions, reverse=True)  # newest first
    assert "alice" in html and "Alice" in html
    # Read-only: no add row, no editable message fields, no delete of the conversation.
    assert 'name="messages-0-text"' not in html
    assert admin_client.get(url("conversation_delete", conversation.pk)).status_code == 403
    assert admin_client.get(url("conversation_add")).status_code == 403


@pytest.mark.django_db
def test_hide_and_unhide_actions(admin_client, general):
    conversation = general.conversation
    keep = services.message_send(conversation=conversation, member_id="a", text="keep")
    hide = services.message_send(conversation=conversation, member_id="a", text="hide me")
    changelist = admin_client.get(url("message_changelist"))
    assert changelist.status_code == 200
    assert b"hide_messages" in changelist.content

    def act(action):
        data = {"action": action, "_selected_action": [str(hide.pk)]}
        return admin_client.post(url("message_changelist"), data, follow=True).content

    assert b"Hid 1 message(s)." in act("hide_messages")
    hide.refresh_from_db()
    keep.refresh_from_db()
    assert hide.hidden and not keep.hidden
    assert b"Unhid 1 message(s)." in act("unhide_messages")
    hide.refresh_from_db()
    assert not hide.hidden
    # Messages are never edited or added in the admin.
    assert admin_client.get(url("message_add")).status_code == 403
    detail = admin_client.get(url("message_change", hide.pk))
    assert detail.status_code == 200 and b'name="text"' not in detail.content


@pytest.mark.django_db
def test_staff_without_change_permission_cannot_hide(client, general):
    message = services.message_send(conversation=general.conversation, member_id="a", text="x")
    user = get_user_model().objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_message"))
    client.force_login(user)
    changelist = client.get(url("message_changelist"))
    assert changelist.status_code == 200 and b"hide_messages" not in changelist.content
    client.post(
        url("message_changelist"),
        {"action": "hide_messages", "_selected_action": [str(message.pk)]},
    )
    message.refresh_from_db()
    assert not message.hidden


@pytest.mark.django_db
def test_member_and_address_lists(admin_client, general):
    services.member_join(conversation=general.conversation, member_id="bob")
    members = admin_client.get(url("member_changelist"))
    assert members.status_code == 200 and b"bob" in members.content
    addresses = admin_client.get(url("address_changelist"), {"q": "gen"})
    assert addresses.status_code == 200 and b"general" in addresses.content


@pytest.mark.django_db
def test_revoking_a_member_revokes_its_chat_tokens_only(admin_client, client, project, general):
    from tests.helpers import mint_chat
    from tokens import services as token_services

    alice = [mint_chat(project, member_id="alice") for _ in range(2)]
    bob = mint_chat(project, member_id="bob")
    member, _ = services.member_join(conversation=general.conversation, member_id="alice")
    # Staff without the registry's revoke permission are not offered the action.
    staff = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_member"))
    client.force_login(staff)
    assert b"revoke_tokens_for" not in client.get(url("member_changelist")).content

    response = admin_client.post(
        url("member_changelist"),
        {"action": "revoke_tokens_for", "_selected_action": [member.pk]},
        follow=True,
    )
    assert "Revoked 2 token(s) of 1 object(s)." in response.content.decode()
    assert [token_services.token_verify(i.token).reason for i in alice] == ["revoked", "revoked"]
    assert token_services.token_verify(bob.token).valid
