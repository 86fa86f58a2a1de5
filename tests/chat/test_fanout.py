"""message_send and member changes fan out through the real channel layer (in memory, or
Redis when REDIS_URL is set), after commit, to the hashed group of (project, channel)."""

import asyncio

import pytest
from channels.db import database_sync_to_async as db_async
from channels.layers import get_channel_layer
from django.db import transaction

from chat import events, services

pytestmark = pytest.mark.django_db(transaction=True)


async def _listen(project, name):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(events.channel_group(project.pk, name), channel)
    return layer, channel


async def test_message_fans_out_after_commit_only(project):
    conversation = await db_async(services.conversation_for_name)(project=project, name="general")
    layer, channel = await _listen(project, "general")

    def send_and_roll_back():
        with transaction.atomic():
            services.message_send(conversation=conversation, member_id="alice", text="lost")
            transaction.set_rollback(True)

    await db_async(send_and_roll_back)()
    message = await db_async(services.message_send)(
        conversation=conversation, member_id="alice", text="hi", metadata={"a": 1}
    )
    event = await asyncio.wait_for(layer.receive(channel), 2)
    # The rolled-back message never reached anyone: the first event is the committed one.
    assert event["type"] == "chat.message" and event["channel"] == "general"
    assert event["message"]["id"] == str(message.id)
    assert event["message"]["conversation_id"] == str(conversation.pk)
    assert event["message"]["text"] == "hi" and event["message"]["metadata"] == {"a": 1}


async def test_member_changes_fan_out(project):
    conversation = await db_async(services.conversation_for_name)(project=project, name="general")
    layer, channel = await _listen(project, "general")
    await db_async(services.member_join)(
        conversation=conversation, member_id="bob", connection=True
    )
    await db_async(services.member_set_state)(
        conversation=conversation, member_id="bob", state={"t": 1}
    )
    await db_async(services.member_leave)(
        conversation=conversation, member_id="bob", connection=True
    )
    changes = [await asyncio.wait_for(layer.receive(channel), 2) for _ in range(3)]
    assert [c["change"] for c in changes] == ["joined", "updated", "left"]
    assert changes[1]["member"] == {"id": "bob", "channel": "general", "state": {"t": 1}}


async def test_another_projects_channel_hears_nothing(project, other_project_and_key):
    other, _ = other_project_and_key
    conversation = await db_async(services.conversation_for_name)(project=project, name="general")
    layer, theirs = await _listen(other, "general")
    await db_async(services.message_send)(conversation=conversation, member_id="alice", text="mine")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(theirs), 0.3)


def test_groups_are_per_project_and_fit_channels_rules(project, other_project_and_key):
    other, _ = other_project_and_key
    a = events.channel_group(project.pk, "general")
    assert a != events.channel_group(other.pk, "general")
    assert a != events.channel_group(project.pk, "General")
    long_name = events.channel_group(project.pk, "é" * 250)
    assert long_name.isascii() and len(long_name) < 100
