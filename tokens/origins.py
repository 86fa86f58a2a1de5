"""The Origin policy of Roomkey's WebSockets.

Every Roomkey socket authenticates with a token it is sent (never with a cookie), so a page on
another site cannot ride on a user's session: the Origin check is defence in depth, not the
authentication. The policy:

- No Origin header: allowed. Only browsers send one; Node, Python and agent processes do not,
  and they hold their own tokens.
- An Origin: allowed when its host is one of ALLOWED_HOSTS (pages Roomkey serves itself, and
  loopback in development), or it matches ROOMKEY["WS_ALLOWED_ORIGINS"] (the customer's web
  apps, e.g. "https://app.example.com"; "*" allows any). Otherwise the handshake is refused
  with 403 before any consumer runs.
"""

from urllib.parse import urlparse

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings


class TokenSocketOriginValidator(OriginValidator):
    def __init__(self, application):
        super().__init__(application, allowed_origins=[])

    async def __call__(self, scope, receive, send):
        # Channels parses the header with urlparse, which raises on a malformed one ("http://[::1",
        # a port out of range): that Origin is refused like any other not allowed, not a 500.
        for name, value in scope.get("headers", []):
            if name == b"origin" and not _parses(value):
                return await WebsocketDenier()(scope, receive, send)
        return await super().__call__(scope, receive, send)

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        # Read at connect time, so settings changes apply without a restart of the router.
        self.allowed_origins = allowed_origins()
        return self.validate_origin(parsed_origin)


def _parses(value: bytes) -> bool:
    try:
        parsed = urlparse(value.decode("latin1"))
        parsed.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        return False
    return True


def allowed_origins() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return hosts + list(getattr(settings, "ROOMKEY", {}).get("WS_ALLOWED_ORIGINS", []))
