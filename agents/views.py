"""HTTP wiring of the agents app: authenticate, validate, call a service, shape the answer.
Each view declares the error format of the contract it serves (agents.errors, tokens.errors)."""

from rest_framework import status
from rest_framework.response import Response

from tokens.api import RoomkeyAPIView, client_ip
from tokens.errors import BadInput, NotFound
from tokens.parsers import BoundedJSONParser

from . import selectors, services
from .errors import VATEL_ERRORS, WEB_CALL_ERRORS
from .serializers import (
    CallSessionCreateSerializer,
    CallSessionSerializer,
    MetadataSerializer,
    SessionTokenRequestSerializer,
    TokenSourceRequestSerializer,
    ToolTokenDebugSerializer,
    ToolTokenRequestSerializer,
    ToolTokenValidateSerializer,
    WebCallRequestSerializer,
)


class _SeedEndpoint(RoomkeyAPIView):
    """A seed contract's endpoint: JSON bodies, POST only, every error in the contract's
    `error_format`."""

    parser_classes = [BoundedJSONParser]
    # POST only: OPTIONS would answer DRF's metadata (the view's docstring) outside the
    # contract's envelope, and HEAD is no use; both are a 405 in the envelope.
    http_method_names = ["post"]


class SessionTokenView(_SeedEndpoint):
    """Seed 003: POST /v1/session-token. Errors `{"error": "<message>"}`."""

    error_format = VATEL_ERRORS
    limit_scope = "issue"

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

    error_format = WEB_CALL_ERRORS
    limit_scope = "issue"

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


class TokenSourceView(RoomkeyAPIView):
    """LiveKit's token-source contract, POST /api/v1/livekit/token-source: 201
    `{server_url, participant_token}`. Roomkey's own API, so DRF's error conventions."""

    parser_classes = [BoundedJSONParser]
    limit_scope = "issue"

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


class _SessionView(RoomkeyAPIView):
    """A view on one of the caller's sessions; another project's is a 404 like an unknown."""

    parser_classes = [BoundedJSONParser]

    def get_session(self, call_id):
        session = selectors.call_session_get(project=self.request.user.project, call_id=call_id)
        if session is None:
            raise NotFound()
        return session


class CallSessionListView(_SessionView):
    """POST /api/v1/sessions — create a session: 201 with its call_id."""

    def post(self, request):
        serializer = CallSessionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = request.user.project
        agent = None
        if "agent_id" in data:
            agent = selectors.agent_for(project=project, agent_id=data["agent_id"])
            if agent is None:
                raise BadInput("No such agent.", field="agent_id")
        session = services.call_session_create(
            project=project,
            call_id=data.get("call_id"),
            agent=agent,
            metadata=data.get("metadata"),
        )
        return Response(CallSessionSerializer(session).data, status=status.HTTP_201_CREATED)


class CallSessionDetailView(_SessionView):
    """GET /api/v1/sessions/{call_id}."""

    def get(self, request, call_id):
        return Response(CallSessionSerializer(self.get_session(call_id)).data)


class CallSessionEndView(_SessionView):
    """POST /api/v1/sessions/{call_id}/end — idempotent; revokes the session's tool tokens."""

    def post(self, request, call_id):
        session = self.get_session(call_id)
        services.call_session_end(session=session, by=str(request.user), reason="ended")
        session.refresh_from_db()
        return Response(CallSessionSerializer(session).data)


class MetadataView(_SessionView):
    """GET / PATCH (merge keys) / PUT (replace) / DELETE (clear) a session's metadata.

    PATCH and PUT take the object itself as the body: `{"key": value, …}`."""

    def get(self, request, call_id):
        return Response(self.get_session(call_id).metadata)

    def _write(self, request, call_id, *, replace):
        session = self.get_session(call_id)
        # No body at all is no object (DRF would read it as {}, and a PUT would clear the
        # metadata); `{}` itself is a PUT that clears it.
        if request.stream is None:
            raise BadInput("Must be a JSON object.", field="metadata")
        serializer = MetadataSerializer(data={"metadata": request.data})
        serializer.is_valid(raise_exception=True)
        metadata = services.call_session_metadata_update(
            session=session, values=serializer.validated_data["metadata"], replace=replace
        )
        return Response(metadata)

    def patch(self, request, call_id):
        return self._write(request, call_id, replace=False)

    def put(self, request, call_id):
        return self._write(request, call_id, replace=True)

    def delete(self, request, call_id):
        services.call_session_metadata_delete(session=self.get_session(call_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MetadataKeyView(_SessionView):
    """DELETE /api/v1/sessions/{call_id}/metadata/{key} — 204, or 404 if the key is absent."""

    def delete(self, request, call_id, key):
        if not services.call_session_metadata_delete(session=self.get_session(call_id), key=key):
            raise NotFound("No such metadata key.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class ToolTokenIssueView(_SessionView):
    """POST /api/v1/sessions/{call_id}/tool-tokens — 201 {token, expires_at, …}."""

    limit_scope = "issue"

    def post(self, request, call_id):
        session = self.get_session(call_id)
        serializer = ToolTokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        issued = services.tool_token_issue(
            session=session,
            function=data["function"],
            ttl=data.get("ttl"),
            max_uses=data.get("max_uses"),
            api_key=request.auth,
            client_ip=client_ip(request),
        )
        return Response(
            {
                "token": issued.token,
                "expires_at": issued.expires_at,
                "jti": issued.row.pk,
                "call_id": session.call_id,
                "function": issued.row.function,
                "max_uses": issued.row.max_uses,
            },
            status=status.HTTP_201_CREATED,
        )


class ToolTokenValidateView(RoomkeyAPIView):
    """POST /api/v1/tool-tokens/validate — 200 {valid, reason} for any token."""

    parser_classes = [BoundedJSONParser]
    limit_scope = "validate"

    def post(self, request):
        serializer = ToolTokenValidateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        check = services.tool_token_validate(
            project=request.user.project,
            call_id=data["call_id"],
            function=data["function"],
            token=data["token"],
        )
        return Response({"valid": check.valid, "reason": check.reason})


class ToolTokenDebugView(RoomkeyAPIView):
    """POST /api/v1/tool-tokens/debug — signalwire-sdk's debug_token() shape, plus `roomkey`."""

    parser_classes = [BoundedJSONParser]
    limit_scope = "validate"

    def post(self, request):
        serializer = ToolTokenDebugSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token = serializer.validated_data["token"]
        return Response(services.tool_token_debug(project=request.user.project, token=token))


class ToolSecretRotateView(RoomkeyAPIView):
    """POST /api/v1/tool-secret/rotate — a new tool secret, shown once; the previous one
    keeps validating for the grace window."""

    def post(self, request):
        row = services.tool_secret_rotate(project=request.user.project)
        return Response(
            {
                "secret": row.secret,
                "previous_valid_until": services.previous_valid_until(row),
            },
            status=status.HTTP_201_CREATED,
        )
