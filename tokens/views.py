"""Token introspection (RFC 7662) and revocation (RFC 7009) for every kind Roomkey issues."""

from rest_framework import status
from rest_framework.response import Response

from . import services
from .api import RoomkeyAPIView
from .parsers import BoundedFormParser, BoundedJSONParser
from .serializers import TokenRequestSerializer

# --- RFC 7662 / RFC 7009 ------------------------------------------------------------------


class _TokenEndpoint(RoomkeyAPIView):
    parser_classes = [BoundedJSONParser, BoundedFormParser]

    def token_from(self, request) -> str:
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["token"]


class IntrospectView(_TokenEndpoint):
    """POST /api/v1/tokens/introspect — RFC 7662 for every kind Roomkey issues."""

    limit_scope = "introspect"

    def post(self, request):
        token = self.token_from(request)
        return Response(services.token_introspect(token, project=request.user.project))


class RevokeView(_TokenEndpoint):
    """POST /api/v1/tokens/revoke — RFC 7009: 200 whether or not there was anything to revoke,
    and never another project's token."""

    limit_scope = "revoke"

    def post(self, request):
        token = self.token_from(request)
        services.token_revoke_raw(
            token,
            project=request.user.project,
            by=str(request.user),
            reason="revoked through the API",
        )
        return Response(status=status.HTTP_200_OK)
