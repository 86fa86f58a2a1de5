"""HTTP wiring: authenticate, validate, call a service, shape the answer."""

from django.conf import settings
from django.views.generic import TemplateView
from rest_framework import status
from rest_framework.response import Response

from . import selectors, services
from .api import RoomkeyAPIView
from .parsers import BoundedFormParser, BoundedJSONParser
from .serializers import TokenRequestSerializer


class LandingView(TemplateView):
    template_name = "landing.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["base_url"] = self.request.build_absolute_uri("/").rstrip("/")
        context["demo_project"] = selectors.demo_project()
        # chat.demo serves the demo page only while DEBUG is on: no link to a 404 otherwise.
        context["chat_demo"] = settings.DEBUG and context["demo_project"] is not None
        return context


# --- RFC 7662 / RFC 7009 ------------------------------------------------------------------


class _TokenEndpoint(RoomkeyAPIView):
    parser_classes = [BoundedJSONParser, BoundedFormParser]

    def token_from(self, request) -> str:
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["token"]


class IntrospectView(_TokenEndpoint):
    """POST /api/v1/tokens/introspect — RFC 7662 for every kind Roomkey issues."""

    def post(self, request):
        token = self.token_from(request)
        return Response(services.token_introspect(token, project=request.user.project))


class RevokeView(_TokenEndpoint):
    """POST /api/v1/tokens/revoke — RFC 7009: 200 whether or not there was anything to revoke,
    and never another project's token."""

    def post(self, request):
        token = self.token_from(request)
        services.token_revoke_raw(
            token,
            project=request.user.project,
            by=str(request.user),
            reason="revoked through the API",
        )
        return Response(status=status.HTTP_200_OK)
