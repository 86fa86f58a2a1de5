"""Request shapes and validation. No side effects: views pass validated data to services."""

import json
import unicodedata

from rest_framework import serializers

# --- Limits of seed 000 (SignalWire chat tokens) ------------------------------------------
TTL_MIN, TTL_MAX = 1, 43200  # minutes (30 days)
CHANNELS_MAX = 500
CHANNEL_NAME_MAX = 250
MEMBER_ID_MAX = 250
STATE_MAX_CHARS = 2000  # of the compact JSON serialisation
RESERVED_PREFIX = "sw_"

# Roomkey's own limit: state is stored as JSON; deeper nesting is refused.
STATE_MAX_DEPTH = 32

# Bidirectional embedding, override and isolate controls: they make a name display as
# something other than what it is.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _has_forbidden_characters(value: str) -> bool:
    return any(c in _BIDI_CONTROLS or unicodedata.category(c) in ("Cc", "Cs") for c in value)


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
        if _has_forbidden_characters(data):
            self.fail("characters")
        return super().to_internal_value(data)


class ChannelsField(serializers.Field):
    """Channel grants, in any of the three forms clients send; normalised to
    `{name: {"read": bool, "write": bool}}`.

    - object: `{"general": {"read": true, "write": true}}` (the REST reference, seed 000);
    - list of objects: `[{"name": "general", "read": true, "write": false}]` (SDK docs);
    - list of names: `["general"]` (the seed's JS example): a bare name grants read and write.
    """

    default_error_messages = {
        "invalid": "Must be an object keyed by channel name, or a list of channel objects "
        "or names.",
        "empty": "At least one channel is required.",
        "too_many": f"At most {CHANNELS_MAX} channels are allowed.",
        "name_type": "Channel {index} has no name string.",
        "name_length": "Channel name {name!r} must be 1 to "
        + str(CHANNEL_NAME_MAX)
        + " characters long.",
        "name_reserved": "Channel name {name!r} starts with the reserved prefix "
        + RESERVED_PREFIX
        + ".",
        "name_characters": "Channel name {name!r} contains control or "
        "bidirectional-override characters.",
        "duplicate": "Channel {name!r} is listed more than once.",
        "permissions": "Channel {name!r}: permissions must be an object with boolean "
        "'read' and 'write'.",
        "no_permission": "Channel {name!r} grants neither read nor write.",
    }

    def to_internal_value(self, data):
        if isinstance(data, dict):
            entries = list(data.items())
        elif isinstance(data, list):
            entries = [self._list_entry(index, item) for index, item in enumerate(data)]
        else:
            self.fail("invalid")
        if not entries:
            self.fail("empty")
        if len(entries) > CHANNELS_MAX:
            self.fail("too_many")
        channels: dict[str, dict] = {}
        for name, perms in entries:
            name = self._clean_name(name)
            if name in channels:
                self.fail("duplicate", name=name)
            channels[name] = self._permissions(name, perms)
        return channels

    def _list_entry(self, index, item):
        if isinstance(item, str):
            return item, {"read": True, "write": True}
        if isinstance(item, dict):
            if not isinstance(item.get("name"), str):
                self.fail("name_type", index=index)
            return item["name"], {k: v for k, v in item.items() if k != "name"}
        self.fail("invalid")

    def _clean_name(self, name):
        if not isinstance(name, str):
            self.fail("name_type", index=name)
        if _has_forbidden_characters(name):
            self.fail("name_characters", name=name[:CHANNEL_NAME_MAX])
        name = unicodedata.normalize("NFC", name)
        if not 1 <= len(name) <= CHANNEL_NAME_MAX:
            self.fail("name_length", name=name[:40])
        if name.startswith(RESERVED_PREFIX):
            self.fail("name_reserved", name=name)
        return name

    def _permissions(self, name, perms):
        if not isinstance(perms, dict) or set(perms) - {"read", "write"}:
            self.fail("permissions", name=name)
        read, write = perms.get("read", False), perms.get("write", False)
        if not isinstance(read, bool) or not isinstance(write, bool):
            self.fail("permissions", name=name)
        if not (read or write):
            self.fail("no_permission", name=name)
        return {"read": read, "write": write}

    def to_representation(self, value):
        return value


class StateField(serializers.Field):
    default_error_messages = {
        "invalid": "Must be a JSON object.",
        "too_long": f"Must be at most {STATE_MAX_CHARS} characters when serialised.",
        "too_deep": f"Must not be nested more than {STATE_MAX_DEPTH} levels deep.",
        "characters": "Must not contain NUL characters or unpaired surrogates.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        self._check(data, 1)
        if len(serialise_state(data)) > STATE_MAX_CHARS:
            self.fail("too_long")
        return data

    def _check(self, value, depth):
        # `depth` counts the objects and arrays enclosing `value`, itself included when it is
        # one; scalars add no level. NUL and lone surrogates are valid JSON but cannot be
        # stored by PostgreSQL.
        if isinstance(value, str):
            if "\x00" in value or any(unicodedata.category(c) == "Cs" for c in value):
                self.fail("characters")
            return
        if not isinstance(value, dict | list):
            return
        if depth > STATE_MAX_DEPTH:
            self.fail("too_deep")
        if isinstance(value, dict):
            for key, item in value.items():
                self._check(key, depth)
                self._check(item, depth + 1)
        else:
            for item in value:
                self._check(item, depth + 1)

    def to_representation(self, value):
        return value


def serialise_state(state: dict) -> str:
    """The serialisation whose length the 2000-character limit counts: compact JSON, with
    non-ASCII characters counted as themselves rather than as \\u escapes."""
    return json.dumps(state, separators=(",", ":"), ensure_ascii=False)


class ChatTokenRequestSerializer(serializers.Serializer):
    ttl = StrictIntegerField(min_value=TTL_MIN, max_value=TTL_MAX)
    channels = ChannelsField()
    member_id = StrictCharField(max_length=MEMBER_ID_MAX, required=False)
    state = StateField(required=False)


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
