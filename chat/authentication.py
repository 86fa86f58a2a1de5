"""DRF authentication with a chat token (`Authorization: Bearer <chat token>`), for the Fabric
paths the `@signalwire/js` Fabric client calls. The token is verified on every request, so a
revoked or expired token stops working at once."""

from rest_framework import authentication, exceptions

from .auth import ChatGrant, chat_grant
from .errors import ChatAuthError


class ChatMember:
    """request.user for chat-token requests: one member of one project."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, grant: ChatGrant):
        self.grant = grant
        self.project = grant.project
        self.member_id = grant.member_id

    def __str__(self):
        return f"chat-member:{self.member_id}"


class ChatTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid token.")
        try:
            raw = parts[1].decode("ascii")
            grant = chat_grant(raw)
        except (UnicodeDecodeError, ChatAuthError):
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        return ChatMember(grant), grant

    def authenticate_header(self, request):
        return 'Bearer realm="roomkey"'
