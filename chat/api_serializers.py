"""Shapes of Roomkey's own chat API (/api/v1/addresses, /api/v1/conversations/…).

Validation only: the viewsets hand validated data to chat.services. Names follow chat.names
(seed 000's channel-name rules, so a name accepted here is a name a chat token can grant) and
message fields chat.validation, the checks the relay and the Fabric API apply too.
"""

from rest_framework import serializers

from tokens.errors import BadInput
from tokens.serializers import ModelSerializer, Serializer, StrictCharField

from . import validation
from .api_pagination import PageSizeSerializer
from .errors import InvalidChannelName
from .models import (
    DISPLAY_NAME_MAX,
    MEMBER_ID_MAX,
    USER_NAME_MAX,
    Address,
    Conversation,
    Member,
    Message,
)
from .names import clean_channel_name

# The member id a message sent through the API is recorded under when the caller names none.
API_USER_ID = "api"


class ChannelNameField(serializers.CharField):
    """A channel name as chat tokens grant it (chat.names): NFC-normalised, then 1-250
    characters, no control or bidi-override characters, not starting with `sw_`."""

    default_error_messages = {"invalid": "Must be a string."}

    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            return clean_channel_name(data)
        except InvalidChannelName as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from None


class ChatInputField(serializers.Field):
    """A field checked by one of chat.validation's functions, the checks every chat path
    (relay frames, Fabric HTTP, this API) shares; its errors become DRF field errors."""

    def __init__(self, check, **kwargs):
        self.check = check
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return self.check(data)
        except BadInput as exc:
            raise serializers.ValidationError(exc.message, code=exc.code) from None

    def to_representation(self, value):
        return value


# --- Addresses ----------------------------------------------------------------------------


class AddressSerializer(ModelSerializer):
    name = ChannelNameField()
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

    name = ChannelNameField(required=False)

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


class MessageCreateSerializer(Serializer):
    text = ChatInputField(validation.text)
    user_id = StrictCharField(max_length=MEMBER_ID_MAX, required=False)
    user_name = StrictCharField(max_length=USER_NAME_MAX, required=False, allow_blank=True)
    metadata = ChatInputField(validation.metadata, required=False)
    details = ChatInputField(validation.details, required=False)
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
