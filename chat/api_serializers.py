"""Shapes of Roomkey's own chat API (/api/v1/addresses, /api/v1/conversations/…).

Validation only: the viewsets hand validated data to chat.services. Limits are the models'
(chat.models) and seed 000's channel-name rules (tokens.serializers), so a name accepted here
is a name a chat token can grant.
"""

import unicodedata

from rest_framework import serializers

from tokens.serializers import (
    CHANNEL_NAME_MAX,
    RESERVED_PREFIX,
    StateField,
    StrictCharField,
    serialise_state,
)

from .api_pagination import PageSizeSerializer
from .models import (
    DETAILS_MAX,
    DISPLAY_NAME_MAX,
    MEMBER_ID_MAX,
    METADATA_MAX,
    TEXT_MAX,
    USER_NAME_MAX,
    Address,
    Conversation,
    Member,
    Message,
)

# The member id a message sent through the API is recorded under when the caller names none.
API_USER_ID = "api"


class ChannelNameField(StrictCharField):
    """A channel name as chat tokens grant it: NFC-normalised, then 1-250 characters, no
    control or bidi-override characters, not starting with SignalWire's reserved `sw_`."""

    default_error_messages = {
        "reserved": f"Must not start with the reserved prefix {RESERVED_PREFIX}.",
        "length": f"Must be 1 to {CHANNEL_NAME_MAX} characters long.",
    }

    def to_internal_value(self, data):
        name = unicodedata.normalize("NFC", super().to_internal_value(data))
        if not 1 <= len(name) <= CHANNEL_NAME_MAX:
            self.fail("length")
        if name.startswith(RESERVED_PREFIX):
            self.fail("reserved")
        return name


class JSONObjectField(StateField):
    """A JSON object of at most `max_chars` characters as compact JSON (non-ASCII counted as
    one), nested at most 32 levels, storable by every database (no NUL, no lone surrogate)."""

    def __init__(self, *, max_chars: int, **kwargs):
        self.max_chars = max_chars
        super().__init__(**kwargs)
        self.error_messages["too_long"] = (
            f"Must be at most {max_chars} characters when serialised as compact JSON."
        )

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        self._check(data, 1)
        if len(serialise_state(data)) > self.max_chars:
            self.fail("too_long")
        return data


# --- Addresses ----------------------------------------------------------------------------


class AddressSerializer(serializers.ModelSerializer):
    name = ChannelNameField(max_length=None)
    display_name = StrictCharField(max_length=DISPLAY_NAME_MAX, required=False, allow_blank=True)
    conversation_id = serializers.UUIDField(source="pk", read_only=True)

    class Meta:
        model = Address
        fields = ["id", "name", "display_name", "conversation_id", "created_at"]
        read_only_fields = ["id", "created_at"]


class AddressUpdateSerializer(AddressSerializer):
    """An address keeps its name: chat tokens already issued grant it by name, so a rename
    would silently move their holders to another channel. Only `display_name` changes."""

    default_error_messages = {"rename": "An address cannot be renamed; create a new one."}

    name = ChannelNameField(max_length=None, required=False)

    def validate_name(self, value):
        if self.instance is not None and value != self.instance.name:
            raise serializers.ValidationError(self.error_messages["rename"], code="rename")
        return value


# --- Conversations ------------------------------------------------------------------------


class ConversationSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="pk", read_only=True)
    address_id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(source="address.name", read_only=True)
    display_name = serializers.CharField(source="address.display_name", read_only=True)

    class Meta:
        model = Conversation
        fields = ["id", "address_id", "name", "display_name", "created_at", "last_message_at"]
        read_only_fields = fields


# --- Messages -----------------------------------------------------------------------------


class MessageSerializer(serializers.ModelSerializer):
    """A message as seed 002's ConversationChatMessage, plus its text and sender fields."""

    conversation_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation_id",
            "user_id",
            "user_name",
            "from_address_id",
            "ts",
            "text",
            "metadata",
            "details",
            "type",
            "subtype",
        ]
        read_only_fields = fields


class MessageTextField(serializers.CharField):
    """Message text as typed: newlines, tabs and right-to-left text are kept. Only what no
    database stores (NUL, unpaired surrogates) is refused."""

    default_error_messages = {
        "invalid": "Must be a string.",
        "characters": "Must not contain NUL characters or unpaired surrogates.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data or any(unicodedata.category(c) == "Cs" for c in data):
            self.fail("characters")
        return super().to_internal_value(data)


class MessageCreateSerializer(serializers.Serializer):
    text = MessageTextField(max_length=TEXT_MAX)
    user_id = StrictCharField(max_length=MEMBER_ID_MAX, required=False)
    user_name = StrictCharField(max_length=USER_NAME_MAX, required=False, allow_blank=True)
    metadata = JSONObjectField(max_chars=METADATA_MAX, required=False)
    details = JSONObjectField(max_chars=DETAILS_MAX, required=False)
    subtype = serializers.ChoiceField(
        choices=[Message.SUBTYPE_CHAT, Message.SUBTYPE_LOG], required=False
    )


class MessageListQuerySerializer(PageSizeSerializer):
    """`before` (older messages) or `after` (newer): the cursors of the answer's links."""

    default_error_messages = {"both": "Give at most one of 'before' and 'after'."}

    before = serializers.CharField(required=False, max_length=200, trim_whitespace=False)
    after = serializers.CharField(required=False, max_length=200, trim_whitespace=False)

    def validate(self, attrs):
        if "before" in attrs and "after" in attrs:
            raise serializers.ValidationError(self.error_messages["both"], code="both")
        return attrs


# --- Members ------------------------------------------------------------------------------


class MemberSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="member_id", read_only=True)
    present = serializers.BooleanField(source="is_present", read_only=True)

    class Meta:
        model = Member
        fields = ["id", "state", "joined_at", "left_at", "present"]
        read_only_fields = fields
