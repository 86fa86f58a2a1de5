"""HTTP wiring: authenticate, validate, call a service, shape the answer."""

from django.conf import settings
from django.views.generic import TemplateView
from rest_framework import exceptions, status
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response

from . import selectors, services
from .api import RoomkeyAPIView, client_ip, signalwire_error
from .conf import roomkey_settings
from .parsers import BoundedFormParser, BoundedJSONParser, as_api_exception
from .serializers import ChatTokenRequestSerializer, TokenRequestSerializer


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


# --- Seed 000: POST /api/chat/tokens ------------------------------------------------------

ERROR_DOCS = "/#errors"


def _signalwire_error(request, *, code, message, attribute, type_="validation_error"):
    return signalwire_error(
        code=code,
        message=message,
        attribute=attribute,
        docs_url=request.build_absolute_uri(ERROR_DOCS),
        type_=type_,
    )


def _flatten(detail, attribute=None):
    """DRF error detail (dict / list / ErrorDetail) -> [(attribute, ErrorDetail)]."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            name = None if key == "non_field_errors" else key
            if attribute and name:
                name = f"{attribute}.{name}"
            out.extend(_flatten(value, name or attribute))
        return out
    if isinstance(detail, list):
        return [item for value in detail for item in _flatten(value, attribute)]
    return [(attribute, detail)]


_CODES = {
    "required": "missing_required_parameter",
    "null": "invalid_parameter",
    "invalid": "invalid_parameter",
    "min_value": "out_of_range",
    "max_value": "out_of_range",
    "max_length": "too_long",
    "blank": "too_short",
}


class ChatTokenView(RoomkeyAPIView):
    """Seed 000. Errors in SignalWire's shapes: 401 `{"error": "Unauthorized"}`; everything
    else `{"errors": [{type, code, message, attribute, url}]}`, 422 for any bad request."""

    parser_classes = [BoundedJSONParser]

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
            relay_url=self.relay_url(request),
            client_ip=client_ip(request),
        )
        return Response({"token": issued.token})

    def relay_url(self, request) -> str:
        configured = roomkey_settings.CHAT_RELAY_URL
        if configured:
            return configured
        scheme = "wss" if request.is_secure() else "ws"
        return f"{scheme}://{request.get_host()}/api/relay/ws"

    def handle_exception(self, exc):
        request = self.request
        exc = as_api_exception(exc)  # before the isinstance checks below
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            response = Response({"error": "Unauthorized"}, status=401)
            response["WWW-Authenticate"] = 'Basic realm="roomkey"'
            return response
        if isinstance(exc, exceptions.ValidationError):
            errors = [
                _signalwire_error(
                    request,
                    code=_CODES.get(getattr(d, "code", ""), getattr(d, "code", "invalid")),
                    message=str(d),
                    attribute=attr,
                )
                for attr, d in _flatten(exc.detail)
            ]
            return Response({"errors": errors}, status=422)
        if isinstance(exc, exceptions.APIException):
            # Malformed or deeply nested JSON, an oversized body, a wrong content type, a
            # wrong method: all answered in the same format.
            code = exc.get_codes() if isinstance(exc.detail, ErrorDetail) else "invalid_request"
            status_code = 405 if isinstance(exc, exceptions.MethodNotAllowed) else 422
            body = {
                "errors": [
                    _signalwire_error(
                        request,
                        code=code if isinstance(code, str) else "invalid_request",
                        message=str(exc.detail),
                        attribute=None,
                        type_="invalid_request_error",
                    )
                ]
            }
            return Response(body, status=status_code)
        return super().handle_exception(exc)
