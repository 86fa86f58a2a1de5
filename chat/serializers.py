"""The chat-token request (seed 000, `POST /api/chat/tokens`): shape and limits only. The
view passes the validated data to chat.services.chat_token_issue."""

from rest_framework import serializers

from tokens.inputs import NOT_FINITE, UNSTORABLE_TEXT, compact_json_chars, json_problem
from tokens.serializers import Serializer, StrictCharField, StrictIntegerField

from .errors import InvalidChannelName
from .names import clean_channel_name

# --- Limits of seed 000 -------------------------------------------------------------------
TTL_MIN, TTL_MAX = 1, 43200  # minutes (30 days)
CHANNELS_MAX = 500
MEMBER_ID_MAX = 250
STATE_MAX_CHARS = 2000  # of the compact JSON serialisation


class ChannelsField(serializers.Field):
    """Channel grants, in any of the three forms clients send; normalised to
    `{name: {"read": bool, "write": bool}}`.

    - object: `{"general": {"read": true, "write": true}}` (the REST reference, seed 000);
    - list of objects: `[{"name": "general", "read": true, "write": false}]` (SDK docs);
    - list of names: `["general"]` (the seed's JS example): a bare name grants read and write.
    """

    # A NUL or lone surrogate is refused (tokens.serializers.CheckedTextMixin) with the code
    # of every other character a channel name must not hold.
    unstorable_code = "name_characters"

    default_error_messages = {
        "invalid": "Must be an object keyed by channel name, or a list of channel objects "
        "or names.",
        "empty": "At least one channel is required.",
        "too_many": f"At most {CHANNELS_MAX} channels are allowed.",
        "name_type": "Channel {index} has no name string.",
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
            try:
                name = clean_channel_name(name)
            except InvalidChannelName as exc:
                raise serializers.ValidationError(exc.message, code=exc.code) from None
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
    """The member's initial state: a JSON object the database can store (tokens.inputs), at
    most STATE_MAX_CHARS characters as compact JSON."""

    default_error_messages = {
        "invalid": "Must be a JSON object.",
        "too_long": f"Must be at most {STATE_MAX_CHARS} characters when serialised.",
    }
    # tokens.inputs.json_problem's answers, as this field's error codes.
    problem_codes = {UNSTORABLE_TEXT: "characters", NOT_FINITE: "not_finite"}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        problem = json_problem(data)
        if problem:
            code = self.problem_codes.get(problem, "too_deep")
            raise serializers.ValidationError(problem, code=code)
        if compact_json_chars(data) > STATE_MAX_CHARS:
            self.fail("too_long")
        return data

    def to_representation(self, value):
        return value


class ChatTokenRequestSerializer(Serializer):
    ttl = StrictIntegerField(min_value=TTL_MIN, max_value=TTL_MAX)
    channels = ChannelsField()
    member_id = StrictCharField(max_length=MEMBER_ID_MAX, required=False)
    state = StateField(required=False)
