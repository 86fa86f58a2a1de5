"""Chat state: addresses (channels), their conversations, members and messages.

A chat token's channel names are address names. The Fabric API speaks of addresses and
conversations, the v3 relay of channels: they are the same rows.
"""

import uuid

from django.db import models
from django.utils import timezone

from tokens.models import Project

# Limits (README "Chat" section). Names follow seed 000's channel-name rules.
NAME_MAX = 250
DISPLAY_NAME_MAX = 250
MEMBER_ID_MAX = 250
USER_NAME_MAX = 250
TEXT_MAX = 10_000  # characters of a message's text
METADATA_MAX = 4_000  # characters of a message's metadata, serialised as compact JSON
DETAILS_MAX = 4_000  # characters of a message's details, serialised as compact JSON
STATE_MAX = 2_000  # characters of a member's state, serialised as compact JSON (seed 000)


class Address(models.Model):
    """A chat channel of a project (a Fabric "address"), named as chat tokens name it.

    Made on first use of a name (a relay subscribe or publish, a Fabric send) or through the
    API, with its Conversation. Names are stored NFC-normalised, so names that look the same
    are the same channel. Deleting an address deletes its conversation and history.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="addresses")
    name = models.CharField(max_length=NAME_MAX)
    display_name = models.CharField(max_length=DISPLAY_NAME_MAX, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name_plural = "addresses"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "name"], name="address_name_unique_in_project"
            )
        ]

    def __str__(self):
        return self.display_name or self.name


class Conversation(models.Model):
    """The history of one address: exactly one per address, sharing its id.

    Made with its address (chat.services.address_get_or_create) and deleted with it. The
    `project` is the address's, copied so tenant-scoped reads need no join.
    """

    address = models.OneToOneField(
        Address, primary_key=True, on_delete=models.CASCADE, related_name="conversation"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="conversations")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_message_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-last_message_at", "-created_at"]
        indexes = [models.Index(fields=["project", "-last_message_at"], name="conversation_recent")]

    def __str__(self):
        return f"conversation {self.address.name}"

    @property
    def id(self):
        return self.address_id


class Member(models.Model):
    """A member (a chat token's subject) in one conversation, with its per-channel state.

    A row is made the first time the member joins (relay subscribe, Fabric join or send) and
    kept afterwards so that its state survives reconnects. `left_at` is set when its last
    relay socket leaves the channel; `connections` counts the relay sockets subscribed now
    (a process that dies without unsubscribing leaves it high until the member rejoins and
    leaves again, which is why "present" also needs `left_at` to be empty).
    """

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="members")
    member_id = models.CharField(max_length=MEMBER_ID_MAX)
    state = models.JSONField(default=dict, blank=True)
    joined_at = models.DateTimeField(default=timezone.now)
    left_at = models.DateTimeField(null=True, blank=True)
    connections = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["joined_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "member_id"], name="member_unique_in_conversation"
            )
        ]

    def __str__(self):
        return self.member_id

    @property
    def is_present(self) -> bool:
        return self.left_at is None


class Message(models.Model):
    """One message of a conversation (seed 002's ConversationChatMessage).

    Written once by chat.services.message_send, which also fans it out; never edited, only
    hidden (`hidden` keeps it out of every history) or deleted with its conversation. `ts` is
    the server clock in epoch seconds; (conversation, ts, id) orders history and is the
    keyset the pages are cut on.
    """

    TYPE_MESSAGE = "message"
    SUBTYPE_CHAT = "chat"
    SUBTYPE_LOG = "log"
    SUBTYPE_CHOICES = [(SUBTYPE_CHAT, "Chat"), (SUBTYPE_LOG, "Log")]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    user_id = models.CharField("member id", max_length=MEMBER_ID_MAX)
    user_name = models.CharField(max_length=USER_NAME_MAX, blank=True, default="")
    from_address_id = models.UUIDField(null=True, blank=True)
    ts = models.FloatField(help_text="Epoch seconds, server clock.")
    text = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    details = models.JSONField(default=dict, blank=True)
    type = models.CharField(max_length=16, default=TYPE_MESSAGE, editable=False)
    subtype = models.CharField(max_length=16, choices=SUBTYPE_CHOICES, default=SUBTYPE_CHAT)
    hidden = models.BooleanField(default=False)

    class Meta:
        ordering = ["-ts", "-id"]
        # The keyset of history pages; it also serves every lookup by conversation.
        indexes = [models.Index(fields=["conversation", "ts", "id"], name="message_keyset")]

    def __str__(self):
        return f"{self.user_id}: {self.text[:40]}"
