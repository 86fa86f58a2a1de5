"""Low-level checks of input values, written once and called by every app: what JSON, the
database (PostgreSQL's text and jsonb, SQLite's JSON1) and UTF-8 can carry, and how long a
value is as compact JSON.

These return a problem (a sentence) or None rather than raising, so each caller turns it into
its own error with its field: a serializer field's `fail`, a `tokens.errors.BadInput`, a
JSON-RPC error on a socket.

Input is checked once where it enters (tokens.serializers.CheckedTextMixin for request fields,
the Fabric body, the relay's frame decoding, the `text` path converter) with
`unstorable_text_at`; output that might still carry such text (rows stored before the check
existed) is written with `encodable_json` or `scrub_json`, so an answer never fails to encode.
"""

import json
import math
import unicodedata

# Nesting deeper than this (objects and arrays) is refused before it reaches the database.
JSON_MAX_DEPTH = 32

UNSTORABLE_TEXT = "Must not contain NUL characters or unpaired surrogates."
NOT_FINITE = "Numbers must be finite."


def has_unpaired_surrogate(text: str) -> bool:
    """True if `text` holds a lone UTF-16 surrogate, which no UTF-8 encoder takes. (JSON's
    decoder pairs escaped surrogates into one character, so any surrogate left is lone.)"""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def is_storable_text(text: str) -> bool:
    """NUL and lone surrogates are valid in JSON strings, and in Python's, but PostgreSQL
    refuses NUL in text and jsonb, and UTF-8 cannot encode a lone surrogate."""
    return "\x00" not in text and not has_unpaired_surrogate(text)


def unstorable_text_at(value) -> tuple | None:
    """Where the first string in `value` (a parsed JSON value; object keys count) that is not
    storable text is, as the path of keys and indexes that leads to it (`()` for `value`
    itself), or None. A bad key's path ends at the object that holds it: the key itself is
    what cannot be written back, in a path or a message.

    Iterative, so a value nested as deeply as the JSON parser allows cannot exhaust the
    stack."""
    stack = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if not is_storable_text(item):
                return path
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                if isinstance(key, str) and not is_storable_text(key):
                    return path
                children.append(((*path, key), child))
            stack.extend(reversed(children))  # depth first, in document order
        elif isinstance(item, list | tuple):
            stack.extend(((*path, i), child) for i, child in reversed(list(enumerate(item))))
    return None


def scrub(text: str) -> str:
    """`text` with every NUL and lone surrogate replaced by U+FFFD, for writing out a string
    that input checks never saw (what a row stored before them holds)."""
    if is_storable_text(text):
        return text
    return "".join("\ufffd" if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in text)


def scrub_json(value):
    """`value` with scrub() applied to every string in it, keys included; other values (numbers,
    dates, ids) as they are. Containers come back as plain dicts and lists."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: scrub_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_json(item) for item in value]
    return value


# Bidirectional embedding, override and isolate controls: they make text display as something
# other than what it is.
def has_forbidden_characters(text: str) -> bool:
    """True if `text` cannot be a name, an id or a label (channel names, member ids, LiveKit
    identities, metadata keys): it holds a control character, a lone surrogate or a format
    character (Unicode Cf: zero-width spaces and joiners, word joiners, byte-order marks, soft
    hyphens, bidirectional marks and overrides), or starts with a combining mark. Each of these
    makes two names that look the same in the admin and in clients' UIs differ (`ali\u200bce`
    and `alice`), or a name display as something it is not."""
    if text and unicodedata.category(text[0]).startswith("M"):
        return True
    return any(unicodedata.category(c) in ("Cc", "Cs", "Cf") for c in text)


def json_problem(value, *, max_depth: int = JSON_MAX_DEPTH, _depth: int = 1) -> str | None:
    """Why the parsed JSON `value` cannot be stored, or None.

    Strings (object keys included) must be storable text, numbers finite, and objects and arrays
    nested at most `max_depth` deep: `_depth` counts the containers enclosing a value, itself
    included when it is one; scalars add no level.
    """
    if isinstance(value, str):
        return None if is_storable_text(value) else UNSTORABLE_TEXT
    if isinstance(value, float):
        return None if math.isfinite(value) else NOT_FINITE
    if not isinstance(value, dict | list):
        return None
    if _depth > max_depth:
        return f"Must not be nested more than {max_depth} levels deep."
    items = value.items() if isinstance(value, dict) else ((None, item) for item in value)
    for key, item in items:
        if isinstance(key, str) and not is_storable_text(key):
            return UNSTORABLE_TEXT
        problem = json_problem(item, max_depth=max_depth, _depth=_depth + 1)
        if problem:
            return problem
    return None


def compact_json(value) -> str:
    """The serialisation Roomkey's size limits count: compact JSON, with a non-ASCII character
    counted as itself rather than as a \\u escape."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def compact_json_chars(value) -> int:
    return len(compact_json(value))


def encodable_json(value) -> str:
    """compact_json(value) that UTF-8 can always encode: a lone surrogate anywhere in `value`
    (an answer built from unchecked data) becomes U+FFFD rather than failing the answer."""
    text = compact_json(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return compact_json(scrub_json(value))
    return text


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text):
    # 1e400 parses to inf, which no JSON column (SQLite JSON_VALID, PostgreSQL jsonb) stores.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def loads_strict(text: str):
    """json.loads without NaN, Infinity or numbers out of range (which Python's parser takes
    and no JSON column stores). Raises ValueError, or RecursionError for absurd nesting."""
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
