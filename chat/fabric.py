"""Fabric HTTP: the paths the `@signalwire/js` 3.28 Fabric client calls, with a chat token.

Errors are SignalWire's: 401 `{"error": "Unauthorized"}`, every other error
`{"errors": [{type, code, message, attribute, url}]}` (403, 404, 405, 422). An address of
another project is a 404 exactly like an unknown one; an address of the token's project whose
name the token does not grant is a 403.
"""

from urllib.parse import urlencode

from rest_framework import exceptions
from rest_framework.exceptions import ErrorDetail
from rest_framework.response import Response

from tokens.api import RoomkeyAPIView, signalwire_error
from tokens.parsers import BoundedJSONParser, as_api_exception

from . import events, selectors, services, validation
from .authentication import ChatTokenAuthentication
from .models import Address
from .names import InvalidChannelName, clean_channel_name

ERROR_DOCS = "/#chat"
GROUP_ID_MAX = 250


class NotFound(exceptions.NotFound):
    default_detail = "Not found."


class FabricAPIView(RoomkeyAPIView):
    authentication_classes = [ChatTokenAuthentication]
    parser_classes = [BoundedJSONParser]

    # --- Wiring helpers ---------------------------------------------------------------------

    @property
    def grant(self):
        return self.request.auth

    def address_or_404(self, address_id, *, write=False) -> Address:
        address = selectors.address_for(project=self.grant.project, address_id=address_id)
        if address is None:
            raise NotFound("No such address.")
        allowed = self.grant.can_write if write else self.grant.can_read
        if not allowed(address.name):
            what = "write" if write else "read"
            raise exceptions.PermissionDenied(f"The token does not allow {what} on this address.")
        return address

    def body_object(self) -> dict:
        if not isinstance(self.request.data, dict):
            raise exceptions.ValidationError("The body must be a JSON object.")
        return self.request.data

    # --- Errors in SignalWire's format ------------------------------------------------------

    def _error(self, *, code, message, attribute=None, type_="invalid_request_error"):
        return signalwire_error(
            code=code,
            message=message,
            attribute=attribute,
            docs_url=self.request.build_absolute_uri(ERROR_DOCS),
            type_=type_,
        )

    def handle_exception(self, exc):
        exc = as_api_exception(exc)
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            response = Response({"error": "Unauthorized"}, status=401)
            response["WWW-Authenticate"] = 'Bearer realm="roomkey"'
            return response
        if isinstance(exc, validation.ChatInputError):
            error = self._error(
                code=exc.code,
                message=exc.message,
                attribute=exc.attribute,
                type_="validation_error",
            )
            return Response({"errors": [error]}, status=422)
        if isinstance(exc, exceptions.ValidationError):
            detail = exc.detail
            messages = detail if isinstance(detail, list) else [detail]
            errors = [self._error(code="invalid_request", message=str(m)) for m in messages]
            return Response({"errors": errors}, status=422)
        if isinstance(exc, exceptions.APIException):
            code = exc.get_codes() if isinstance(exc.detail, ErrorDetail) else "invalid_request"
            status = exc.status_code
            if isinstance(exc, exceptions.ParseError | exceptions.UnsupportedMediaType):
                # As tokens.asgi.RequestBodyLimit answers these paths: 422, code says why.
                status = 422
            error = self._error(
                code=code if isinstance(code, str) else "invalid_request",
                message=str(exc.detail),
            )
            return Response({"errors": [error]}, status=status)
        return super().handle_exception(exc)


def _page_size(raw) -> int:
    if raw is None:
        return selectors.PAGE_SIZE_DEFAULT
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= selectors.PAGE_SIZE_MAX or str(value) != raw.strip():
        raise validation.ChatInputError(
            f"Must be an integer from 1 to {selectors.PAGE_SIZE_MAX}.",
            attribute="page_size",
            code="out_of_range",
        )
    return value


class ConversationMessagesView(FabricAPIView):
    """GET /api/fabric/conversations/{address_id}/messages?page_size=N — newest first;
    `links.next` continues to older messages, `links.prev` back to newer ones."""

    def get(self, request, address_id):
        address = self.address_or_404(address_id)
        conversation = services.conversation_for_address(address=address)
        size = _page_size(request.query_params.get("page_size"))
        after, before = request.query_params.get("after"), request.query_params.get("before")
        try:
            page = selectors.messages_page(
                conversation=conversation, older_than=after, newer_than=before, limit=size
            )
        except selectors.InvalidCursor as exc:
            raise validation.ChatInputError(
                str(exc), attribute="after" if after else "before"
            ) from None
        path = request.path

        def link(**cursor):
            return f"{path}?{urlencode({'page_size': size, **cursor})}"

        self_cursor = {"after": after} if after else {"before": before} if before else {}
        return Response(
            {
                "data": [
                    events.conversation_message(m, conversation=conversation) for m in page.items
                ],
                "links": {
                    "self": link(**self_cursor),
                    "first": link(),
                    "next": link(after=page.last_cursor) if page.older else None,
                    "prev": link(before=page.first_cursor) if page.newer else None,
                },
            }
        )


class SendMessageView(FabricAPIView):
    """POST /api/fabric/messages {conversation_id, text, group_id?, metadata?, details?}.
    The sender joins the conversation if it had not."""

    def post(self, request):
        body = self.body_object()
        address = self.address_or_404(_required(body, "conversation_id"), write=True)
        text = validation.text(_required(body, "text"))
        metadata = validation.metadata(body.get("metadata"))
        details = validation.details(body.get("details"))
        group_id = body.get("group_id")
        if group_id is not None:
            if not isinstance(group_id, str) or not 1 <= len(group_id) <= GROUP_ID_MAX:
                raise validation.ChatInputError(
                    f"Must be a string of 1 to {GROUP_ID_MAX} characters.", attribute="group_id"
                )
            details = {**details, "group_id": group_id}
        conversation = services.conversation_for_address(address=address)
        services.member_join(conversation=conversation, member_id=self.grant.member_id)
        message = services.message_send(
            conversation=conversation,
            member_id=self.grant.member_id,
            text=text,
            metadata=metadata,
            details=details,
        )
        return Response(events.conversation_message(message, conversation=conversation), 201)


class JoinConversationView(FabricAPIView):
    """POST /api/fabric/conversations/join {conversation_id} — idempotent."""

    def post(self, request):
        body = self.body_object()
        address = self.address_or_404(_required(body, "conversation_id"))
        conversation = services.conversation_for_address(address=address)
        member, joined = services.member_join(
            conversation=conversation, member_id=self.grant.member_id
        )
        return Response(
            {
                "conversation_id": str(conversation.pk),
                "address_id": str(address.pk),
                "member_id": member.member_id,
                "joined": joined,
                "joined_at": member.joined_at.timestamp(),
            }
        )


def address_payload(address: Address) -> dict:
    return {
        "id": str(address.pk),
        "name": address.name,
        "display_name": address.display_name or address.name,
        "type": "room",
        "created_at": address.created_at.timestamp(),
        "channels": {"messaging": f"/api/fabric/conversations/{address.pk}/messages"},
    }


class AddressView(FabricAPIView):
    """GET /api/fabric/addresses/{id} — one address the token grants."""

    def get(self, request, address_id):
        address = selectors.address_for(project=self.grant.project, address_id=address_id)
        if address is None:
            raise NotFound("No such address.")
        if not (self.grant.can_read(address.name) or self.grant.can_write(address.name)):
            raise exceptions.PermissionDenied("The token does not grant this address.")
        return Response(address_payload(address))


class AddressListView(FabricAPIView):
    """GET /api/fabric/addresses[?name=] — the addresses of the token's channels. A granted
    name is a first use of that channel: its address is made if it did not exist."""

    def get(self, request):
        name = request.query_params.get("name")
        if name is None:
            names = list(self.grant.channels)[: selectors.PAGE_SIZE_MAX]
        else:
            try:
                name = clean_channel_name(name)
            except InvalidChannelName:
                name = None
            names = [name] if name in self.grant.channels else []
        data = [
            address_payload(services.address_get_or_create(project=self.grant.project, name=n))
            for n in names
        ]
        return Response({"data": data, "links": {"self": request.get_full_path()}})


def _required(body: dict, name: str):
    if name not in body or body[name] is None:
        raise validation.ChatInputError(
            "This field is required.", attribute=name, code="missing_required_parameter"
        )
    return body[name]
