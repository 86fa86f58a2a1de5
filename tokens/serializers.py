"""Request shapes and validation. No side effects: views pass validated data to services.

The strict fields here are shared by every app's serializers: JSON types as sent (no string
to number coercion), and text without control or bidirectional-override characters. Every
request serializer mixes in CheckedTextMixin, the one check of what the database and JSON can
carry.
"""

from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.fields import empty

from .inputs import UNSTORABLE_TEXT, has_forbidden_characters, unstorable_text_at


class CheckedTextMixin:
    """For request serializers: every string a declared field is given, at any depth and
    object keys included, must be storable text (no NUL, no lone surrogate: tokens.inputs).
    Checked before any field's own validation, so no field stores such a string, and none
    echoes it in an error message (a ChoiceField's "… is not a valid choice." would, and a
    lone surrogate cannot be encoded in the answer).

    The refusal is the field's error, with the field's `unstorable_code` ("characters" unless
    it names its own). A field whose value is judged rather than stored or echoed (a token
    string: anything that is not a good token is simply not valid) sets `opaque = True`.
    Keys the serializer does not declare are ignored, as DRF ignores them.
    """

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = {}
            for field in self._writable_fields:
                if getattr(field, "opaque", False):
                    continue
                value = field.get_value(data)
                if value is not empty and unstorable_text_at(value) is not None:
                    code = getattr(field, "unstorable_code", "characters")
                    errors[field.field_name] = [serializers.ErrorDetail(UNSTORABLE_TEXT, code)]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class Serializer(CheckedTextMixin, serializers.Serializer):
    """A request serializer: DRF's, with CheckedTextMixin."""


class ModelSerializer(CheckedTextMixin, serializers.ModelSerializer):
    """A request model serializer: DRF's, with CheckedTextMixin."""


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

    opaque = True  # judged, never stored or echoed: CheckedTextMixin leaves it to the verifier
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


class TokenRequestSerializer(Serializer):
    """RFC 7662 / RFC 7009 request: `token`, with an optional (ignored) `token_type_hint`."""

    token = TokenStringField()
    token_type_hint = serializers.CharField(required=False, allow_blank=True, max_length=64)
