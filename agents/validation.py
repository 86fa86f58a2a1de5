"""The agents' value rules, as functions that say what is wrong (a sentence) or None, so the
serializers, the services and the SessionManager apply the same rule with their own errors.
What JSON and the database can hold is tokens.inputs'; these are the agents' own limits."""

import unicodedata

from tokens.inputs import compact_json_chars, has_unpaired_surrogate, json_problem

from . import toolformat
from .conf import agents_settings

METADATA_KEY_MAX = 256
CALL_ID_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-~:@")

_TEXT_WHITESPACE = frozenset("\t\n\r")


def is_free_text(value: str) -> bool:
    """Free text (a prompt, a first message, participant metadata) may hold tabs, line breaks
    and bidirectional marks; not other control characters (NUL among them) nor unpaired
    surrogates, which no UTF-8 consumer (LiveKit, PostgreSQL) takes."""
    return not has_unpaired_surrogate(value) and not any(
        unicodedata.category(c) == "Cc" and c not in _TEXT_WHITESPACE for c in value
    )


def call_id_problem(call_id) -> str | None:
    """Why `call_id` cannot name a session, or None. URL-safe characters only (plus ":" and
    "@"), so every call id can appear in the REST paths as it is."""
    if not isinstance(call_id, str) or not call_id:
        return "Must be a non-empty string."
    if len(call_id) > toolformat.CALL_ID_MAX:
        return f"Must be at most {toolformat.CALL_ID_MAX} characters."
    if not set(call_id) <= CALL_ID_ALLOWED or call_id in (".", ".."):
        return "May contain only letters, digits and . _ - ~ : @ (and is not . or ..)."
    return None


def function_problem(function) -> str | None:
    if not isinstance(function, str) or not toolformat.FUNCTION.fullmatch(function):
        return "Must be 1 to 64 letters, digits, underscores or hyphens."
    return None


def metadata_problem(metadata) -> str | None:
    """Why a call session's `metadata` cannot be stored, or None."""
    if not isinstance(metadata, dict):
        return "Must be a JSON object."
    for key in metadata:
        if not isinstance(key, str) or not 1 <= len(key) <= METADATA_KEY_MAX:
            return f"Keys must be 1 to {METADATA_KEY_MAX} characters."
    problem = json_problem(metadata)
    if problem:
        return problem
    try:
        size = compact_json_chars(metadata)
    except (TypeError, ValueError):
        return "Must be JSON."
    limit = agents_settings.CALL_METADATA_MAX_CHARS
    if size > limit:
        return f"Must be at most {limit} characters as compact JSON (is {size})."
    return None
