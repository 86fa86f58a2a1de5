"""Fabric HTTP: the paths the `@signalwire/js` 3.28 Fabric client calls, with a chat token.

Errors are SignalWire's (chat.errors.FABRIC_ERRORS): 401 `{"error": "Unauthorized"}`, every
other error `{"errors": [{type, code, message, attribute, url}]}` (403, 404, 405, 422). An
address of another project is a 404 exactly like an unknown one; an address of the token's
project whose name the token does not grant is a 403.
"""

from urllib.parse import urlencode

from rest_framework.response import Response

from tokens.api import RoomkeyAPIView
from tokens.errors import BadInput, BadRequest, NotFound
from tokens.inputs import UNSTORABLE_TEXT, unstorable_text_at
from tokens.parsers import BoundedJSONParser

from . import events, selectors, services, validation
from .authentication import ChatTokenAuthentication
from .errors import FABRIC_ERRORS, InvalidChannelName, InvalidCursor, NotGranted
from .models import Address
from .names import clean_channel_name

GROUP_ID_MAX = 250


class FabricAPIView(RoomkeyAPIView):
    authentication_classes = [ChatTokenAuthentication]
    parser_classes = [BoundedJSONParser]
    error_format = FABRIC_ERRORS
    limit_scope = "chat"

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
            raise NotGranted(f"The token does not allow {what} on this address.")
        return address

    def body_object(self) -> dict:
        """The JSON object of the body: where every Fabric body enters, so where its strings
        are checked for what the database and JSON can carry (tokens.inputs)."""
        body = self.request.data
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object.")
        path = unstorable_text_at(body)
        if path is not None:
            field = path[0] if path else None
            raise BadInput(UNSTORABLE_TEXT, field=field, code=validation.INVALID)
        return body


def _page_size(raw) -> int:
    if raw is None:
        return selectors.PAGE_SIZE_DEFAULT
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= selectors.PAGE_SIZE_MAX or str(value) != raw.strip():
        raise BadInput(
            f"Must be an integer from 1 to {selectors.PAGE_SIZE_MAX}.",
            field="page_size",
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
        except InvalidCursor as exc:
            raise InvalidCursor(exc.message, field="after" if after else "before") from None
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
                raise BadInput(
                    f"Must be a string of 1 to {GROUP_ID_MAX} characters.",
                    field="group_id",
                    code=validation.INVALID,
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
            raise NotGranted("The token does not grant this address.")
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
        raise BadInput("This field is required.", field=name, code="missing_required_parameter")
    return body[name]
