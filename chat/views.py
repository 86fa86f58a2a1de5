"""Seed 000: `POST /api/chat/tokens`, a chat token for SignalWire's chat clients.

API-key authentication (Bearer, or Basic `<project_id>:<key>` as SignalWire's SDKs send it);
errors in SignalWire's format (chat.errors.CHAT_TOKEN_ERRORS): 401 `{"error": "Unauthorized"}`,
everything else `{"errors": [{type, code, message, attribute, url}]}`, 422 for any bad request.
"""

from rest_framework.response import Response

from tokens.api import RoomkeyAPIView, client_ip
from tokens.parsers import BoundedJSONParser

from . import services
from .conf import chat_settings
from .errors import CHAT_TOKEN_ERRORS
from .routing import RELAY_PATH
from .serializers import ChatTokenRequestSerializer


def relay_url(request) -> str:
    """The relay's public URL, for a token's `ch` header: the RELAY_URL setting, else this
    server's (wss:// on a secure request)."""
    configured = chat_settings.RELAY_URL
    if configured:
        return configured
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}/{RELAY_PATH}"


class ChatTokenView(RoomkeyAPIView):
    parser_classes = [BoundedJSONParser]
    error_format = CHAT_TOKEN_ERRORS
    limit_scope = "issue"

    def post(self, request):
        serializer = ChatTokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        issued = services.chat_token_issue(
            project=request.user.project,
            api_key=request.auth,
            ttl_minutes=data["ttl"],
            channels=data["channels"],
            member_id=data.get("member_id"),
            state=data.get("state", {}),
            relay_url=relay_url(request),
            client_ip=client_ip(request),
        )
        return Response({"token": issued.token})
