"""`{{placeholder}}` templates of assistants, filled from web-call metadata.

A placeholder is `{{name}}` (spaces inside the braces allowed: `{{ name }}`), where name is
letters, digits and underscores. A string value is inserted as is, a number or boolean as
JSON writes it (`42`, `2.5`, `true`). A placeholder with no value in the metadata becomes
the empty string, so an agent never reads a raw `{{name}}`. Only one pass is made: braces
inside a value are not expanded again.
"""

import json
import re

from .errors import TemplateTooLong

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def render(template: str, metadata: dict, *, max_chars: int | None = None) -> str:
    """The filled template; TemplateTooLong as soon as it would pass `max_chars` (a template that
    repeats a placeholder many times must not build megabytes first)."""
    parts, size, last = [], 0, 0
    for match in PLACEHOLDER.finditer(template):
        for piece in (template[last : match.start()], _text(metadata.get(match.group(1), ""))):
            size += len(piece)
            if max_chars is not None and size > max_chars:
                raise TemplateTooLong()
            parts.append(piece)
        last = match.end()
    tail = template[last:]
    if max_chars is not None and size + len(tail) > max_chars:
        raise TemplateTooLong()
    parts.append(tail)
    return "".join(parts)


def placeholders(template: str) -> list[str]:
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))
