"""Channel names: the one rule for every name a chat token grants and a client sends (the
chat-token request, relay frames, the Fabric and DRF APIs, the admin), so that a name a token
can grant is exactly a name the relay accepts."""

import unicodedata

from tokens.inputs import has_forbidden_characters

from .errors import InvalidChannelName

# Seed 000's limits.
CHANNEL_NAME_MAX = 250
RESERVED_PREFIX = "sw_"


def clean_channel_name(name) -> str:
    """`name` NFC-normalised, or InvalidChannelName (its `code` says which rule it broke).
    NFC-equal names are the same channel."""
    if not isinstance(name, str):
        raise InvalidChannelName("Channel name must be a string.", code="name_type")
    if has_forbidden_characters(name):
        raise InvalidChannelName(
            f"Channel name {name[:CHANNEL_NAME_MAX]!r} contains control or "
            "bidirectional-override characters.",
            code="name_characters",
        )
    name = unicodedata.normalize("NFC", name)
    if not 1 <= len(name) <= CHANNEL_NAME_MAX:
        raise InvalidChannelName(
            f"Channel name {name[:40]!r} must be 1 to {CHANNEL_NAME_MAX} characters long.",
            code="name_length",
        )
    if name.startswith(RESERVED_PREFIX):
        raise InvalidChannelName(
            f"Channel name {name!r} starts with the reserved prefix {RESERVED_PREFIX}.",
            code="name_reserved",
        )
    return name
