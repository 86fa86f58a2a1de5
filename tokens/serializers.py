"""Request shapes and validation. No side effects: views pass validated data to services.

The strict fields here are shared by every app's serializers: JSON types as sent (no string
to number coercion), and text without control or bidirectional-override characters.
"""

from rest_framework import serializers

from .inputs import has_forbidden_characters


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, not a string, float or boolean."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A JSON string, kept as given, without control or bidi-override characters."""

    default_error_messages = {
        "invalid": "Must be a string.",
        "characters": "Must not contain control or bidirectional-override characters.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if has_forbidden_characters(data):
            self.fail("characters")
        return super().to_internal_value(data)


class TokenStringField(serializers.Field):
    """Any non-blank string, surrounding whitespace trimmed. A token is judged by the verifier,
    which answers "inactive" for every malformed one (NUL bytes, surrogates, megabytes of
    text); the request itself is only refused when `token` is absent, blank or not a string."""

    default_error_messages = {
        "invalid": "Must be a string.",
        "blank": "This field may not be blank.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        data = data.strip()
        if not data:
            self.fail("blank")
        return data

    def to_representation(self, value):
        return value


class TokenRequestSerializer(serializers.Serializer):
    """RFC 7662 / RFC 7009 request: `token`, with an optional (ignored) `token_type_hint`."""

    token = TokenStringField()
    token_type_hint = serializers.CharField(required=False, allow_blank=True, max_length=64)
