"""What chat sends over the channel layer and how messages look on each wire.

A stored Message has one canonical shape, seed 002's ConversationChatMessage
(`conversation_message`). The v3 relay (`Chat.Client`) shows it as a chat message with
`content`, `meta`, `published_at` and `member` (`v3_message`). Channel-layer events carry the
canonical shape only, as plain JSON types (channels-redis serialises them with msgpack), and
each socket renders it for its own protocol.
"""

import json

from tokens import live

from .models import Member, Message

# A v3 publish whose content is not a string stores the content as compact JSON text and
# marks the message's details with this, so that v3 readers get the original value back.
CONTENT_TYPE_KEY = "content_type"
CONTENT_TYPE_JSON = "application/json"


def channel_group(project_id, name: str) -> str:
    """The channel-layer group of the project's channel `name` (already NFC-normalised).

    Hashed: Channels allows only short ASCII group names, and the project is part of the
    hash, so project A's "general" never reaches project B's "general".
    """
    return live.resource_group("chat", f"{project_id}:{name}")


def conversation_message(message: Message, *, conversation=None) -> dict:
    """Seed 002's ConversationChatMessage, plus text, metadata, from_address_id, user_name,
    hidden. The conversation id is the address id."""
    conversation = conversation or message.conversation
    address_id = str(conversation.pk)
    return {
        "id": str(message.id),
        "conversation_id": address_id,
        "conversation_name": conversation.address.name,
        "address_id": address_id,
        "user_id": message.user_id,
        "user_name": message.user_name or message.user_id,
        "from_address_id": str(message.from_address_id) if message.from_address_id else None,
        "ts": message.ts,
        "text": message.text,
        "metadata": message.metadata,
        "details": message.details,
        "type": message.type,
        "subtype": message.subtype,
        "hidden": message.hidden,
    }


def message_event(message: Message, *, conversation, member_state: dict | None = None) -> dict:
    """The channel-layer event a stored message fans out as; `member_state` is the sender's
    state in the channel, which v3 clients see on each message."""
    return {
        "type": "chat.message",
        "channel": conversation.address.name,
        "message": conversation_message(message, conversation=conversation),
        "member_state": member_state or {},
    }


def member_payload(member: Member, *, channel: str) -> dict:
    return {"id": member.member_id, "channel": channel, "state": member.state or {}}


def member_event(member: Member, *, change: str, channel: str) -> dict:
    """`change` is "joined", "updated" or "left"."""
    return {
        "type": "chat.member",
        "change": change,
        "channel": channel,
        "member": member_payload(member, channel=channel),
    }


def v3_content(message: dict):
    details = message.get("details") or {}
    if details.get(CONTENT_TYPE_KEY) == CONTENT_TYPE_JSON:
        try:
            return json.loads(message["text"])
        except ValueError:
            pass
    return message["text"]


def v3_message(message: dict, *, channel: str, state: dict | None = None) -> dict:
    """A canonical message as `Chat.Client` receives it (event and history)."""
    return {
        "id": message["id"],
        "channel": channel,
        "content": v3_content(message),
        "meta": message.get("metadata") or {},
        "published_at": message["ts"],
        "member": {"id": message["user_id"], "channel": channel, "state": state or {}},
    }
