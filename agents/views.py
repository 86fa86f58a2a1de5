"""HTTP wiring of the agents API: authenticate (API key), validate, call a service, shape."""

# --- Call sessions and tool tokens (issue 5, seed 001) ------------------------------------

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from tokens.api import RoomkeyAPIView, client_ip
from tokens.parsers import BoundedJSONParser

from . import selectors, services
from .serializers import (
    CallSessionCreateSerializer,
    CallSessionSerializer,
    MetadataSerializer,
    ToolTokenDebugSerializer,
    ToolTokenRequestSerializer,
    ToolTokenValidateSerializer,
)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _api_error(exc: services.CallSessionError) -> exceptions.APIException:
    if isinstance(exc, services.SessionNotFound):
        return exceptions.NotFound()
    if isinstance(exc, services.BadMetadata):
        return exceptions.ValidationError({"metadata": [str(exc)]})
    return Conflict(str(exc), code=exc.code)


class _SessionView(RoomkeyAPIView):
    """A view on one of the caller's sessions; another project's is a 404 like an unknown."""

    parser_classes = [BoundedJSONParser]

    def get_session(self, call_id):
        session = selectors.call_session_get(project=self.request.user.project, call_id=call_id)
        if session is None:
            raise Http404
        return session

    def handle_exception(self, exc):
        if isinstance(exc, services.CallSessionError):
            exc = _api_error(exc)
        return super().handle_exception(exc)


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
                raise exceptions.ValidationError({"agent_id": ["No such agent."]})
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
            raise exceptions.NotFound("No such metadata key.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class ToolTokenIssueView(_SessionView):
    """POST /api/v1/sessions/{call_id}/tool-tokens — 201 {token, expires_at, …}."""

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
