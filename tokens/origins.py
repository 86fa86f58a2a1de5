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

from channels.security.websocket import OriginValidator
from django.conf import settings


class TokenSocketOriginValidator(OriginValidator):
    def __init__(self, application):
        super().__init__(application, allowed_origins=[])

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        # Read at connect time, so settings changes apply without a restart of the router.
        self.allowed_origins = allowed_origins()
        return self.validate_origin(parsed_origin)


def allowed_origins() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return hosts + list(getattr(settings, "ROOMKEY", {}).get("WS_ALLOWED_ORIGINS", []))
