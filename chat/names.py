"""Channel names: the rules chat tokens already follow (tokens.serializers), applied to every
name a client sends, so that a name a token can grant is exactly a name the relay accepts."""

from rest_framework.exceptions import ValidationError

from tokens.serializers import ChannelsField


class InvalidChannelName(ValueError):
    """The name is empty, too long, reserved (`sw_`), not a string or has control or
    bidirectional-override characters; the message says which."""


def clean_channel_name(name) -> str:
    """`name` NFC-normalised, or InvalidChannelName. NFC-equal names are the same channel."""
    if not isinstance(name, str):
        raise InvalidChannelName("Channel name must be a string.")
    try:
        channels = ChannelsField().to_internal_value([name])
    except ValidationError as exc:
        detail = exc.detail[0] if isinstance(exc.detail, list) else exc.detail
        raise InvalidChannelName(str(detail)) from None
    return next(iter(channels))
