"""Request and response shapes of the agents API. Validation only; no side effects."""

# --- Call sessions and tool tokens (issue 5) ----------------------------------------------

from rest_framework import serializers

from tokens.conf import roomkey_settings
from tokens.serializers import StrictCharField, StrictIntegerField

from . import services
from .models import CallSession


class CallIdField(StrictCharField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        problem = services.call_id_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


class FunctionField(StrictCharField):
    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        problem = services.function_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value


class MetadataField(serializers.Field):
    """A JSON object within the metadata limits (size, depth, key length)."""

    def to_internal_value(self, data):
        problem = services.metadata_problem(data)
        if problem:
            raise serializers.ValidationError(problem)
        return data

    def to_representation(self, value):
        return value


class CallSessionCreateSerializer(serializers.Serializer):
    call_id = CallIdField(required=False)
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


class MetadataSerializer(serializers.Serializer):
    """PUT/PATCH body: the metadata object itself."""

    metadata = MetadataField()


class ToolTokenRequestSerializer(serializers.Serializer):
    function = FunctionField()
    ttl = StrictIntegerField(required=False, min_value=1)
    max_uses = StrictIntegerField(required=False, min_value=1, allow_null=True)

    def validate_ttl(self, value):
        limit = roomkey_settings.TOOL_TOKEN_MAX_TTL
        if value > limit:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {limit}."
            )
        return value

    def validate_max_uses(self, value):
        limit = roomkey_settings.TOOL_TOKEN_MAX_USES
        if value is not None and value > limit:
            raise serializers.ValidationError(
                f"Ensure this value is less than or equal to {limit}."
            )
        return value


class AnyValueField(serializers.Field):
    """Kept as sent, whatever its type: the verdict is the service's to give."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


class ToolTokenValidateSerializer(serializers.Serializer):
    # call_id and function are the caller's to get right (400 if absent or not strings); the
    # token is judged, never refused: anything that is not a good token is `valid: false`.
    call_id = StrictCharField(max_length=1024)
    function = StrictCharField(max_length=1024)
    token = AnyValueField(allow_null=True)


class ToolTokenDebugSerializer(serializers.Serializer):
    token = AnyValueField(allow_null=True)
