"""Request shapes and validation, no side effects. Limits are documented in the README."""

import math
import uuid

from rest_framework import serializers

from tokens.inputs import compact_json_chars, has_forbidden_characters, is_storable_text
from tokens.serializers import Serializer, StrictCharField, StrictIntegerField

from . import livekit
from .conf import agents_settings
from .models import CallSession
from .validation import call_id_problem, function_problem, is_free_text, metadata_problem

PROMPT_MAX_CHARS = 16000
FIRST_MESSAGE_MAX_CHARS = 2000
WEB_CALL_METADATA_MAX_CHARS = 8192  # compact JSON, a non-ASCII character counting as one
WEB_CALL_METADATA_KEY_MAX_CHARS = 64
ASSISTANT_ID_MAX_CHARS = 100
TOKEN_SOURCE_DISPATCH_MAX = 8


class StrictUUIDField(serializers.UUIDField):
    """A UUID written as a JSON string (DRF's own also takes integers)."""

    default_error_messages = {"invalid": "Must be a valid UUID string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class _Optional:
    """Optional, and null or "" allowed (what they mean is the field's to say)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("allow_blank", True)
        super().__init__(**kwargs)


class TextField(StrictCharField):
    """Free text (a prompt, a first message, participant metadata): unlike a name, it may hold
    tabs, line breaks and bidirectional marks; other control characters and unpaired
    surrogates are refused."""

    default_error_messages = {
        "characters": "Must not contain control characters other than tabs and line breaks, "
        "or unpaired surrogates."
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if not is_free_text(data):
            self.fail("characters")
        return serializers.CharField.to_internal_value(self, data)


class OverrideField(_Optional, TextField):
    """An optional override: absent or null means none; "" is an override to nothing."""


class SessionTokenRequestSerializer(Serializer):
    agent_id = StrictUUIDField()
    version_id = StrictUUIDField(required=False, allow_null=True)
    transport = serializers.ChoiceField(
        choices=["websocket", "webrtc"], required=False, default="websocket"
    )
    first_message = OverrideField(max_length=FIRST_MESSAGE_MAX_CHARS)
    prompt = OverrideField(max_length=PROMPT_MAX_CHARS)


class WebCallMetadataField(serializers.Field):
    default_error_messages = {
        "invalid": "Must be an object whose values are strings, numbers or booleans.",
        "key": f"Keys must be 1 to {WEB_CALL_METADATA_KEY_MAX_CHARS} characters, without "
        "control characters.",
        "characters": "Values must not contain NUL characters or unpaired surrogates.",
        "too_long": f"Must be at most {WEB_CALL_METADATA_MAX_CHARS} characters when serialised "
        "as compact JSON.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        for key, value in data.items():
            if not 1 <= len(key) <= WEB_CALL_METADATA_KEY_MAX_CHARS or has_forbidden_characters(
                key
            ):
                self.fail("key")
            if isinstance(value, str):
                if not is_storable_text(value):
                    self.fail("characters")
            elif isinstance(value, bool | int):
                pass
            elif isinstance(value, float):
                if not math.isfinite(value):
                    self.fail("invalid")
            else:
                self.fail("invalid")
        if compact_json_chars(data) > WEB_CALL_METADATA_MAX_CHARS:
            self.fail("too_long")
        return data

    def to_representation(self, value):
        return value


class WebCallRequestSerializer(Serializer):
    assistant_id = StrictCharField(max_length=ASSISTANT_ID_MAX_CHARS)
    metadata = WebCallMetadataField(required=False, allow_null=True)

    def validate_assistant_id(self, value):
        # Any string is a valid request; one that is no UUID names no assistant (404).
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return value


# --- LiveKit token source -------------------------------------------------------------------


class OptionalStringField(_Optional, StrictCharField):
    """Absent, null and "" all mean "let the server choose"."""


class OptionalTextField(_Optional, TextField):
    """Absent, null and "" all mean "none"."""


class StringMapField(serializers.Field):
    default_error_messages = {
        "invalid": "Must be an object of string values.",
        "characters": TextField.default_error_messages["characters"],
    }

    def to_internal_value(self, data):
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            self.fail("invalid")
        if any(has_forbidden_characters(k) for k in data):
            self.fail("invalid")
        if not all(is_free_text(v) for v in data.values()):
            self.fail("characters")
        return data

    def to_representation(self, value):
        return value


class RoomConfigField(serializers.Field):
    """LiveKit's RoomConfiguration, of which Roomkey lets clients set only `agents` (each
    `agentName` or `agent_name`, and an optional `metadata` string)."""

    default_error_messages = {
        "invalid": "Must be an object.",
        "unsupported": "Only 'agents' can be set; not: {fields}.",
        "agents": "'agents' must be a list of at most "
        + str(TOKEN_SOURCE_DISPATCH_MAX)
        + " objects with a non-empty 'agentName' string and an optional 'metadata' string.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        extra = sorted(set(data) - {"agents"})
        if extra:
            self.fail("unsupported", fields=", ".join(extra))
        agents = data.get("agents") or []
        if not isinstance(agents, list) or len(agents) > TOKEN_SOURCE_DISPATCH_MAX:
            self.fail("agents")
        dispatches = []
        for item in agents:
            if not isinstance(item, dict) or set(item) - {"agentName", "agent_name", "metadata"}:
                self.fail("agents")
            name = item.get("agentName", item.get("agent_name"))
            metadata = item.get("metadata", "")
            if not isinstance(name, str) or not name or not isinstance(metadata, str):
                self.fail("agents")
            dispatches.append(livekit.dispatch(name, metadata))
        return {"agents": dispatches}

    def to_representation(self, value):
        return value


class TokenSourceRequestSerializer(Serializer):
    room_name = OptionalStringField()
    participant_identity = OptionalStringField()
    participant_name = OptionalStringField()
    participant_metadata = OptionalTextField()
    participant_attributes = StringMapField(required=False, allow_null=True)
    room_config = RoomConfigField(required=False, allow_null=True)

    def given(self) -> dict:
        """The fields the client set: null, "" and {} count as not set."""
        return {k: v for k, v in self.validated_data.items() if v not in (None, "", {}, [])}


# --- Call sessions and tool tokens -----------------------------------------------------------


class RuleField(StrictCharField):
    """A string that `rule` (one of agents.validation's) accepts."""

    def __init__(self, rule, **kwargs):
        self.rule = rule
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        problem = self.rule(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


class MetadataField(serializers.Field):
    """A JSON object within the metadata limits (size, depth, key length)."""

    def to_internal_value(self, data):
        problem = metadata_problem(data)
        if problem:
            raise serializers.ValidationError(problem)
        return data

    def to_representation(self, value):
        return value


class CallSessionCreateSerializer(Serializer):
    call_id = RuleField(call_id_problem, required=False)
    agent_id = serializers.UUIDField(required=False)
    metadata = MetadataField(required=False)


class CallSessionSerializer(serializers.ModelSerializer):
    agent_id = serializers.UUIDField(read_only=True, allow_null=True)
    status = serializers.SerializerMethodField()

    class Meta:
        model = CallSession
        fields = [
            "call_id",
            "agent_id",
            "metadata",
            "status",
            "created_at",
            "expires_at",
            "ended_at",
        ]

    def get_status(self, obj) -> str:
        return obj.status()


class MetadataSerializer(Serializer):
    """PUT/PATCH body: the metadata object itself."""

    metadata = MetadataField()


class ToolTokenRequestSerializer(Serializer):
    function = RuleField(function_problem)
    ttl = StrictIntegerField(required=False, min_value=1)
    max_uses = StrictIntegerField(required=False, min_value=1, allow_null=True)

    def validate_ttl(self, value):
        limit = agents_settings.TOOL_TOKEN_MAX_TTL
        if value > limit:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {limit}."
            )
        return value

    def validate_max_uses(self, value):
        limit = agents_settings.TOOL_TOKEN_MAX_USES
        if value is not None and value > limit:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {limit}."
            )
        return value


class AnyValueField(serializers.Field):
    """Kept as sent, whatever its type: the verdict is the service's to give."""

    opaque = True  # judged, never stored (tokens.serializers.CheckedTextMixin)

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


class ToolTokenValidateSerializer(Serializer):
    # call_id and function are the caller's to get right (400 if absent or not strings); the
    # token is judged, never refused: anything that is not a good token is `valid: false`.
    call_id = StrictCharField(max_length=1024)
    function = StrictCharField(max_length=1024)
    token = AnyValueField(allow_null=True)


class ToolTokenDebugSerializer(Serializer):
    token = AnyValueField(allow_null=True)
