"""HTTP wiring of the agents app: authenticate, validate, call a service, shape the answer."""

import logging

from rest_framework import exceptions, status
from rest_framework.response import Response

from tokens.api import RoomkeyAPIView, client_ip
from tokens.parsers import BoundedJSONParser, as_api_exception

from . import livekit, services
from .serializers import (
    SessionTokenRequestSerializer,
    TokenSourceRequestSerializer,
    WebCallRequestSerializer,
)

log = logging.getLogger(__name__)

# ============================================================================================
# Issue 3: seed 003 (session tokens), seed 004 (web calls), LiveKit token source
# ============================================================================================


def _first_error(detail, prefix: str = "") -> str:
    """DRF error detail -> "field: message" of the first error."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else key
            return _first_error(value, f"{prefix}.{name}" if prefix and name else name or prefix)
        return prefix or "Invalid request."
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], prefix)
    return f"{prefix}: {detail}" if prefix else str(detail)


class _SeedEndpoint(RoomkeyAPIView):
    """A seed contract's endpoint: every error, whatever raised it, is answered as
    `status, message` in the contract's own envelope (`envelope`)."""

    parser_classes = [BoundedJSONParser]
    unauthorized = "Invalid or missing API key."
    not_configured_status = 500

    def envelope(self, message: str) -> dict:
        raise NotImplementedError

    def answer(self, status_code: int, message: str, **headers) -> Response:
        response = Response(self.envelope(message), status=status_code)
        for name, value in headers.items():
            response[name.replace("_", "-")] = value
        return response

    def handle_exception(self, exc):
        exc = as_api_exception(exc)
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            return self.answer(401, self.unauthorized, WWW_Authenticate='Bearer realm="roomkey"')
        if isinstance(exc, services.NotFound):
            return self.answer(404, str(exc))
        if isinstance(exc, services.Unprocessable):
            message = f"{exc.field}: {exc.message}" if exc.field else exc.message
            return self.answer(422, message)
        if isinstance(exc, livekit.LimitExceeded):
            return self.answer(422, f"{exc.field}: {exc.message}")
        if isinstance(exc, exceptions.ValidationError):
            return self.answer(422, _first_error(exc.detail))
        if isinstance(exc, exceptions.MethodNotAllowed):
            return self.answer(405, str(exc.detail), Allow="POST, OPTIONS")
        if isinstance(exc, exceptions.APIException):
            # Malformed or deeply nested JSON, a body over the limit, a wrong content type:
            # all invalid bodies.
            return self.answer(422, str(exc.detail))
        if isinstance(exc, services.LiveKitNotConfigured):
            log.error("LiveKit is not configured for project %s", self.request.user.project.pk)
            return self.answer(
                self.not_configured_status, "LiveKit is not configured for this project."
            )
        log.exception("unexpected error in %s", type(self).__name__)
        return self.answer(500, self.internal_error)

    internal_error = "Internal server error."


class SessionTokenView(_SeedEndpoint):
    """Seed 003: POST /v1/session-token. Errors `{"error": "<message>"}`."""

    def envelope(self, message):
        return {"error": message}

    def post(self, request):
        serializer = SessionTokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        issued = services.session_token_issue(
            project=request.user.project,
            agent_id=data["agent_id"],
            version_id=data.get("version_id"),
            transport=data["transport"],
            prompt=data.get("prompt"),
            first_message=data.get("first_message"),
            api_key=request.auth,
            client_ip=client_ip(request),
        )
        if issued.transport == "webrtc":
            body = {
                "token": issued.token,
                "room": issued.room,
                "identity": issued.identity,
                "url": issued.url,
            }
        else:
            body = {"token": issued.token}
        return Response(body)


class WebCallTokenView(_SeedEndpoint):
    """Seed 004: POST /web_call/get_token. Every answer is
    `{"success", "message", "data"}`."""

    unauthorized = "Invalid or missing Bearer token."
    internal_error = "Internal error while generating the token."

    def envelope(self, message):
        return {"success": False, "message": message, "data": None}

    def post(self, request):
        serializer = WebCallRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        call = services.web_call_issue(
            project=request.user.project,
            assistant_id=data["assistant_id"],
            metadata=data.get("metadata") or {},
            api_key=request.auth,
            client_ip=client_ip(request),
        )
        return Response(
            {
                "success": True,
                "message": "Token generated successfully",
                "data": {"room_name": call.room.name, "token": call.token},
            }
        )


def oversize_session_token(scope, message):
    """tokens.asgi's answer for a body over the limit, before Django reads it."""
    return 422, {"error": message}


def oversize_web_call(scope, message):
    return 422, {"success": False, "message": message, "data": None}


class TokenSourceView(RoomkeyAPIView):
    """LiveKit's token-source contract, POST /api/v1/livekit/token-source: 201
    `{server_url, participant_token}`. Roomkey's own API, so DRF's error conventions."""

    parser_classes = [BoundedJSONParser]

    def post(self, request):
        serializer = TokenSourceRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = services.token_source_issue(
            project=request.user.project,
            request=serializer.given(),
            api_key=request.auth,
            client_ip=client_ip(request),
        )
        return Response(
            {"server_url": issued.url, "participant_token": issued.token},
            status=status.HTTP_201_CREATED,
        )

    def handle_exception(self, exc):
        if isinstance(exc, services.FieldsNotAllowed):
            return Response(
                {
                    "detail": "This project does not let clients set: "
                    + ", ".join(exc.fields)
                    + ".",
                    "fields": exc.fields,
                },
                status=status.HTTP_403_FORBIDDEN,
            )
        if isinstance(exc, services.Unprocessable | livekit.LimitExceeded):
            return Response({exc.field or "non_field_errors": [exc.message]}, status=400)
        if isinstance(exc, services.LiveKitNotConfigured):
            return Response(
                {"detail": "LiveKit is not configured for this project."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return super().handle_exception(exc)
