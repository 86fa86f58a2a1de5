"""The documented limits of chat input, checked the same way on every path (relay frames,
Fabric HTTP, the DRF API). Each check returns the cleaned value or raises
tokens.errors.BadInput naming the field, so each path answers in its own error format."""

from tokens.errors import BadInput
from tokens.inputs import compact_json, compact_json_chars, has_forbidden_characters, json_problem

from .models import DETAILS_MAX, MEMBER_ID_MAX, METADATA_MAX, STATE_MAX, TEXT_MAX

# The code of a value of the wrong type or content; SignalWire's name for it.
INVALID = "invalid_parameter"


def _storable(value, field: str) -> None:
    problem = json_problem(value)
    if problem:
        raise BadInput(problem, field=field, code=INVALID)


def text(value, *, field: str = "text", allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise BadInput("Must be a string.", field=field, code=INVALID)
    if not value and not allow_empty:
        raise BadInput("Must not be empty.", field=field, code="too_short")
    if len(value) > TEXT_MAX:
        raise BadInput(f"Must be at most {TEXT_MAX} characters.", field=field, code="too_long")
    _storable(value, field)
    return value


def json_object(value, *, field: str, max_chars: int, allow_none: bool = True) -> dict:
    """A JSON object of at most `max_chars` characters as compact JSON (None -> {})."""
    if value is None and allow_none:
        return {}
    if not isinstance(value, dict):
        raise BadInput("Must be a JSON object.", field=field, code=INVALID)
    _storable(value, field)
    if compact_json_chars(value) > max_chars:
        raise BadInput(
            f"Must be at most {max_chars} characters when serialised.",
            field=field,
            code="too_long",
        )
    return value


def metadata(value, *, field: str = "metadata") -> dict:
    return json_object(value, field=field, max_chars=METADATA_MAX)


def details(value, *, field: str = "details") -> dict:
    return json_object(value, field=field, max_chars=DETAILS_MAX)


def state(value, *, field: str = "state") -> dict:
    return json_object(value, field=field, max_chars=STATE_MAX, allow_none=False)


def member_id(value, *, field: str = "member_id") -> str:
    if not isinstance(value, str) or not value:
        raise BadInput("Must be a non-empty string.", field=field, code=INVALID)
    if len(value) > MEMBER_ID_MAX:
        raise BadInput(f"Must be at most {MEMBER_ID_MAX} characters.", field=field, code="too_long")
    if has_forbidden_characters(value):
        raise BadInput(
            "Must not contain control, invisible or bidirectional characters.",
            field=field,
            code=INVALID,
        )
    return value


def v3_content(value, *, field: str = "content") -> tuple[str, dict]:
    """A v3 `chat.publish` content (any JSON value) as (text, details): strings as they are,
    anything else as compact JSON marked in details (chat.events.v3_content reverses it)."""
    from .events import CONTENT_TYPE_JSON, CONTENT_TYPE_KEY

    if isinstance(value, str):
        return text(value, field=field), {}
    if value is None:
        raise BadInput("Content is required.", field=field, code=INVALID)
    _storable(value, field)
    return text(compact_json(value), field=field), {CONTENT_TYPE_KEY: CONTENT_TYPE_JSON}
