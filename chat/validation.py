"""The documented limits of chat input, checked the same way on every path (relay frames,
Fabric HTTP, the DRF API). Each check returns the cleaned value or raises ChatInputError
naming the attribute, so each path can answer in its own error format."""

import json
import math
import unicodedata

from tokens.serializers import STATE_MAX_DEPTH, serialise_state

from .models import DETAILS_MAX, MEMBER_ID_MAX, METADATA_MAX, STATE_MAX, TEXT_MAX


class ChatInputError(ValueError):
    def __init__(self, message: str, *, attribute: str, code: str = "invalid_parameter"):
        super().__init__(message)
        self.message = message
        self.attribute = attribute
        self.code = code


def _storable(value, attribute: str, depth: int = 1) -> None:
    # NUL and lone surrogates are valid JSON that PostgreSQL cannot store; deep nesting is
    # refused before it reaches the database.
    if isinstance(value, str):
        if "\x00" in value or any(unicodedata.category(c) == "Cs" for c in value):
            raise ChatInputError(
                "Must not contain NUL characters or unpaired surrogates.", attribute=attribute
            )
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ChatInputError("Numbers must be finite.", attribute=attribute)
    if not isinstance(value, dict | list):
        return
    if depth > STATE_MAX_DEPTH:
        raise ChatInputError(
            f"Must not be nested more than {STATE_MAX_DEPTH} levels deep.", attribute=attribute
        )
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(key, str):
            _storable(key, attribute, depth)
        _storable(item, attribute, depth + 1)


def text(value, *, attribute: str = "text", allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ChatInputError("Must be a string.", attribute=attribute)
    if not value and not allow_empty:
        raise ChatInputError("Must not be empty.", attribute=attribute, code="too_short")
    if len(value) > TEXT_MAX:
        raise ChatInputError(
            f"Must be at most {TEXT_MAX} characters.", attribute=attribute, code="too_long"
        )
    _storable(value, attribute)
    return value


def json_object(value, *, attribute: str, max_chars: int, allow_none: bool = True) -> dict:
    """A JSON object of at most `max_chars` characters as compact JSON (None -> {})."""
    if value is None and allow_none:
        return {}
    if not isinstance(value, dict):
        raise ChatInputError("Must be a JSON object.", attribute=attribute)
    _storable(value, attribute)
    if len(serialise_state(value)) > max_chars:
        raise ChatInputError(
            f"Must be at most {max_chars} characters when serialised.",
            attribute=attribute,
            code="too_long",
        )
    return value


def metadata(value, *, attribute: str = "metadata") -> dict:
    return json_object(value, attribute=attribute, max_chars=METADATA_MAX)


def details(value, *, attribute: str = "details") -> dict:
    return json_object(value, attribute=attribute, max_chars=DETAILS_MAX)


def state(value, *, attribute: str = "state") -> dict:
    return json_object(value, attribute=attribute, max_chars=STATE_MAX, allow_none=False)


def member_id(value, *, attribute: str = "member_id") -> str:
    if not isinstance(value, str) or not value:
        raise ChatInputError("Must be a non-empty string.", attribute=attribute)
    if len(value) > MEMBER_ID_MAX:
        raise ChatInputError(
            f"Must be at most {MEMBER_ID_MAX} characters.", attribute=attribute, code="too_long"
        )
    return value


def v3_content(value, *, attribute: str = "content") -> tuple[str, dict]:
    """A v3 `chat.publish` content (any JSON value) as (text, details): strings as they are,
    anything else as compact JSON marked in details (chat.events.v3_content reverses it)."""
    from .events import CONTENT_TYPE_JSON, CONTENT_TYPE_KEY

    if isinstance(value, str):
        return text(value, attribute=attribute), {}
    if value is None:
        raise ChatInputError("Content is required.", attribute=attribute)
    _storable(value, attribute)
    encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text(encoded, attribute=attribute), {CONTENT_TYPE_KEY: CONTENT_TYPE_JSON}
