"""chat.services and chat.selectors against the real database."""

import unicodedata

import pytest
from django.db import IntegrityError

from chat import selectors, services
from chat.models import Address, Conversation, Member, Message
from chat.names import InvalidChannelName


@pytest.fixture
def conversation(project):
    return services.conversation_for_name(project=project, name="general")


def test_address_is_made_on_first_use_with_its_conversation(project):
    address = services.address_get_or_create(project=project, name="general")
    again = services.address_get_or_create(project=project, name="general")
    assert again.pk == address.pk
    conversation = Conversation.objects.get(pk=address.pk)
    assert conversation.id == address.id and conversation.project_id == project.pk


def test_nfc_equal_names_are_one_address(project):
    composed = unicodedata.normalize("NFC", "café")
    decomposed = unicodedata.normalize("NFD", "café")
    assert composed != decomposed
    a = services.address_get_or_create(project=project, name=composed)
    b = services.address_get_or_create(project=project, name=decomposed)
    assert a.pk == b.pk and Address.objects.count() == 1
    assert selectors.address_by_name(project=project, name=decomposed).pk == a.pk


@pytest.mark.parametrize("name", ["", "x" * 251, "sw_reserved", "evil\u202egnp", "tab\there", 42])
def test_names_chat_tokens_could_not_carry_are_refused(project, name):
    with pytest.raises(InvalidChannelName):
        services.address_get_or_create(project=project, name=name)
    assert not Address.objects.exists()


def test_name_length_limit_at_n(project):
    assert services.address_get_or_create(project=project, name="x" * 250).name == "x" * 250


def test_same_name_in_two_projects_are_two_addresses(project, other_project_and_key):
    other, _ = other_project_and_key
    a = services.address_get_or_create(project=project, name="general")
    b = services.address_get_or_create(project=other, name="general")
    assert a.pk != b.pk
    assert selectors.address_for(project=other, address_id=a.pk) is None
    assert selectors.conversation_for(project=other, conversation_id=a.pk) is None
    assert selectors.conversation_for(project=project, conversation_id="not-a-uuid") is None


def test_address_create_refuses_a_taken_name(project):
    services.address_create(project=project, name="general", display_name="General")
    with pytest.raises(IntegrityError):
        services.address_create(project=project, name="general")


def test_address_update_and_delete(project, conversation):
    address = conversation.address
    services.message_send(conversation=conversation, member_id="m", text="hi")
    services.address_update(address=address, display_name="The lobby")
    assert Address.objects.get(pk=address.pk).display_name == "The lobby"
    services.address_delete(address=address)
    assert not Message.objects.exists() and not Conversation.objects.exists()


def test_member_join_leave_with_connections(conversation):
    member, joined = services.member_join(
        conversation=conversation, member_id="alice", state={"x": 1}, connection=True
    )
    assert joined and member.is_present and member.state == {"x": 1}
    _, joined = services.member_join(
        conversation=conversation, member_id="alice", state={"x": 2}, connection=True
    )
    assert not joined
    assert [m.member_id for m in selectors.members_present(conversation=conversation)] == ["alice"]
    services.member_leave(conversation=conversation, member_id="alice", connection=True)
    assert selectors.members_present(conversation=conversation).count() == 1  # one socket left
    services.member_leave(conversation=conversation, member_id="alice", connection=True)
    assert not selectors.members_present(conversation=conversation).exists()
    # The row, and its state, outlive the leave.
    assert Member.objects.get(member_id="alice").state == {"x": 1}
    assert services.member_leave(conversation=conversation, member_id="nobody") is None


def test_member_set_state(conversation):
    services.member_set_state(conversation=conversation, member_id="bob", state={"typing": True})
    assert selectors.member_for(conversation=conversation, member_id="bob").state == {
        "typing": True
    }
    assert selectors.member_states(conversation=conversation, member_ids=["bob", "x"]) == {
        "bob": {"typing": True}
    }


def test_message_send_stores_server_time_and_hide(conversation):
    message = services.message_send(
        conversation=conversation,
        member_id="alice",
        text="hello",
        metadata={"k": "v"},
        details={"d": 1},
    )
    message.refresh_from_db()
    assert message.type == "message" and message.subtype == "chat" and not message.hidden
    assert isinstance(message.ts, float) and message.ts > 1.7e9
    assert services.message_hide(message=message)
    assert not services.message_hide(message=message)
    page = selectors.messages_page(conversation=conversation)
    assert page.items == []
    assert selectors.messages_page(conversation=conversation, include_hidden=True).items == [
        message
    ]


def _send(conversation, n):
    return [
        services.message_send(conversation=conversation, member_id="m", text=str(i))
        for i in range(n)
    ]


def test_keyset_pages_walk_history_both_ways(conversation):
    sent = _send(conversation, 7)
    newest_first = sent[::-1]
    first = selectors.messages_page(conversation=conversation, limit=3)
    assert first.items == newest_first[:3] and first.older and not first.newer
    second = selectors.messages_page(
        conversation=conversation, older_than=first.last_cursor, limit=3
    )
    assert second.items == newest_first[3:6] and second.older and second.newer
    third = selectors.messages_page(
        conversation=conversation, older_than=second.last_cursor, limit=3
    )
    assert third.items == newest_first[6:] and not third.older and third.newer
    back = selectors.messages_page(
        conversation=conversation, newer_than=third.first_cursor, limit=3
    )
    assert back.items == newest_first[3:6] and back.newer and back.older
    top = selectors.messages_page(conversation=conversation, newer_than=back.first_cursor, limit=5)
    assert top.items == newest_first[:3] and not top.newer and top.older


def test_equal_timestamps_are_ordered_by_id(conversation):
    sent = _send(conversation, 4)
    Message.objects.update(ts=1_700_000_000.5)  # a clock that did not move
    walked = []
    cursor = None
    while True:
        page = selectors.messages_page(conversation=conversation, older_than=cursor, limit=1)
        walked += page.items
        if not page.older:
            break
        cursor = page.last_cursor
    assert sorted(m.id for m in walked) == sorted(m.id for m in sent)
    assert [m.id for m in walked] == sorted((m.id for m in sent), reverse=True)


@pytest.mark.parametrize("cursor", ["", "!!!", "bm9wZQ", "x" * 300, 5])
def test_bad_cursors_are_refused(conversation, cursor):
    with pytest.raises(selectors.InvalidCursor):
        selectors.messages_page(conversation=conversation, older_than=cursor)


def test_page_size_is_bounded(conversation):
    _send(conversation, 3)
    assert len(selectors.messages_page(conversation=conversation, limit=0).items) == 1
    assert len(selectors.messages_page(conversation=conversation, limit=10**6).items) == 3
