"""The relay's `chat.*` methods and the channel-layer events a relay socket renders.

`ChatMethods` is the half of chat.consumers.RelayConsumer that speaks chat: the requests of
SignalWire's `Chat.Client` (v3) and what both protocol versions receive when a message is
stored or a member changes. It reads the consumer's `grant`, `version` and `subscriptions`
and answers through its `_send`; the consumer owns the socket, the JSON-RPC framing and
authentication, and dispatches `chat.*` requests through `HANDLERS`.
"""

import uuid

from channels.db import database_sync_to_async

from tokens.errors import BadInput, Forbidden

from . import events, selectors, services, validation
from .auth import ChatGrant
from .errors import InvalidChannelName, NotGranted
from .models import Message
from .names import clean_channel_name

V3, V4 = 3, 4  # signalwire.connect's version.major: Chat.Client, the Fabric client
MEMBERS_MAX = 1000  # members listed by chat.members.get
CHANNELS_PER_REQUEST_MAX = 500  # as many as a token can grant


class ChatMethods:
    """chat.* requests and channel-layer events, for RelayConsumer (see the module)."""

    grant: ChatGrant | None = None  # set once signalwire.connect succeeded
    version: int | None = None  # V3 or V4
    subscriptions: dict  # channel name -> Conversation (v3 chat.subscribe)

    # --- Params -----------------------------------------------------------------------------

    def _channel(self, value, *, field="channel") -> str:
        if isinstance(value, dict):
            value = value.get("name")
        try:
            return clean_channel_name(value)
        except InvalidChannelName as exc:
            raise BadInput(f"{field}: {exc.message}") from None

    def _channels(self, params, *, required=True) -> list[str]:
        value = params.get("channels")
        if value is None and not required:
            return []
        if isinstance(value, str | dict):
            value = [value]
        if not isinstance(value, list) or not value:
            raise BadInput("channels must be a non-empty list of {name} objects.")
        if len(value) > CHANNELS_PER_REQUEST_MAX:
            raise BadInput(f"At most {CHANNELS_PER_REQUEST_MAX} channels at once.")
        names = []
        for item in value:
            name = self._channel(item, field="channels")
            if name not in names:
                names.append(name)
        return names

    def _need(self, names, *, write=False) -> None:
        check = self.grant.can_write if write else self.grant.can_read
        for name in names:
            if not check(name):
                what = "write" if write else "read"
                raise NotGranted(f"The token does not allow {what} on {name!r}.")

    # --- chat.* -----------------------------------------------------------------------------

    async def rpc_subscribe(self, params):
        names = self._channels(params)
        self._need(names)
        new = [name for name in names if name not in self.subscriptions]
        if new:
            # Into the groups first, so the socket hears its own member's `joined`.
            for name in new:
                self.subscriptions[name] = None
                await self.join_group(events.channel_group(self.grant.project.pk, name))
            conversations = await database_sync_to_async(self._join)(new)
            self.subscriptions.update(conversations)
        return {"code": "200", "message": "OK"}

    def _join(self, names) -> dict:
        joined = {}
        for name in names:
            conversation = services.conversation_for_name(project=self.grant.project, name=name)
            services.member_join(
                conversation=conversation,
                member_id=self.grant.member_id,
                state=self.grant.state,
                connection=True,
            )
            joined[name] = conversation
        return joined

    async def rpc_unsubscribe(self, params):
        names = [name for name in self._channels(params) if name in self.subscriptions]
        await self._leave(names)
        return {"code": "200", "message": "OK"}

    async def _leave(self, names):
        for name in names:
            self.subscriptions.pop(name, None)
            await self.leave_group(events.channel_group(self.grant.project.pk, name))
        if names:
            await database_sync_to_async(self._leave_rows)(names)

    def _leave_rows(self, names):
        for name in names:
            conversation = selectors.conversation_by_name(project=self.grant.project, name=name)
            if conversation is not None:
                services.member_leave(
                    conversation=conversation, member_id=self.grant.member_id, connection=True
                )

    async def rpc_publish(self, params):
        name = self._channel(params.get("channel"))
        self._need([name], write=True)
        text, details = validation.v3_content(params.get("content"))
        metadata = validation.metadata(params.get("meta"), field="meta")
        await database_sync_to_async(self._publish)(name, text, metadata, details)
        return {"code": "200", "message": "OK"}

    def _publish(self, name, text, metadata, details):
        conversation = services.conversation_for_name(project=self.grant.project, name=name)
        services.message_send(
            conversation=conversation,
            member_id=self.grant.member_id,
            text=text,
            metadata=metadata,
            details=details,
        )

    async def rpc_messages_get(self, params):
        name = self._channel(params.get("channel"))
        self._need([name])
        cursor = params.get("cursor") or {}
        if not isinstance(cursor, dict) or ("after" in cursor and "before" in cursor):
            raise BadInput("cursor must be {after} or {before}.")
        limit = params.get("limit", selectors.PAGE_SIZE_DEFAULT)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise BadInput("limit must be an integer from 1 to 100.")
        # A bad cursor is selectors' InvalidCursor, answered like the checks above.
        return await database_sync_to_async(self._history)(name, cursor, limit)

    def _history(self, name, cursor, limit) -> dict:
        for value in cursor.values():
            selectors.decode_cursor(value)  # a bad cursor is an error even on an empty channel
        conversation = selectors.conversation_by_name(project=self.grant.project, name=name)
        if conversation is None:
            empty = {"before": None, "after": None, "next": None, "prev": None}
            return {"code": "200", "messages": [], "cursor": empty}
        # The list is newest first; `after` continues it (older), `before` goes back (newer).
        page = selectors.messages_page(
            conversation=conversation,
            older_than=cursor.get("after"),
            newer_than=cursor.get("before"),
            limit=limit,
            subtypes=[Message.SUBTYPE_CHAT],
        )
        states = selectors.member_states(
            conversation=conversation, member_ids=[m.user_id for m in page.items]
        )
        messages = [
            events.v3_message(
                events.conversation_message(m, conversation=conversation),
                channel=name,
                state=states.get(m.user_id),
            )
            for m in page.items
        ]
        return {
            "code": "200",
            "messages": messages,
            "cursor": {
                "before": page.first_cursor if page.newer else None,
                "after": page.last_cursor if page.older else None,
                "next": page.last_cursor if page.older else None,
                "prev": page.first_cursor if page.newer else None,
            },
        }

    async def rpc_members_get(self, params):
        name = self._channel(params.get("channel"))
        self._need([name])
        members = await database_sync_to_async(self._members)(name)
        return {"code": "200", "members": members}

    def _members(self, name) -> list:
        conversation = selectors.conversation_by_name(project=self.grant.project, name=name)
        if conversation is None:
            return []
        present = selectors.members_present(conversation=conversation)[:MEMBERS_MAX]
        return [events.member_payload(m, channel=name) for m in present]

    async def rpc_member_set_state(self, params):
        member_id = params.get("member_id", self.grant.member_id)
        if member_id != self.grant.member_id:
            raise Forbidden("A token may only set its own member's state.")
        names = self._channels(params)
        self._need(names, write=True)
        state = validation.state(params.get("state"))
        await database_sync_to_async(self._set_state)(names, state)
        return {"code": "200", "message": "OK"}

    def _set_state(self, names, state):
        for name in names:
            conversation = services.conversation_for_name(project=self.grant.project, name=name)
            services.member_set_state(
                conversation=conversation, member_id=self.grant.member_id, state=state
            )

    async def rpc_member_get_state(self, params):
        member_id = validation.member_id(params.get("member_id", self.grant.member_id))
        names = self._channels(params, required=False) or self.grant.readable()
        self._need(names)
        channels = await database_sync_to_async(self._get_state)(member_id, names)
        return {"code": "200", "channels": channels}

    def _get_state(self, member_id, names) -> dict:
        out = {}
        for name in names:
            conversation = selectors.conversation_by_name(project=self.grant.project, name=name)
            member = (
                selectors.member_for(conversation=conversation, member_id=member_id)
                if conversation is not None
                else None
            )
            out[name] = {"state": member.state if member is not None else {}}
        return out

    HANDLERS = {
        "chat.subscribe": rpc_subscribe,
        "chat.unsubscribe": rpc_unsubscribe,
        "chat.publish": rpc_publish,
        "chat.messages.get": rpc_messages_get,
        "chat.members.get": rpc_members_get,
        "chat.member.set_state": rpc_member_set_state,
        "chat.member.get_state": rpc_member_get_state,
    }

    # --- Channel-layer events ---------------------------------------------------------------

    async def chat_message(self, event):
        """A message stored by chat.services.message_send, in any process."""
        message = event["message"]
        channel = event["channel"]
        if self.version == V4:
            await self._push("conversation.message", message)
        elif channel in self.subscriptions:
            if message.get("subtype") != Message.SUBTYPE_CHAT:
                return
            params = {
                "channel": channel,
                "message": events.v3_message(
                    message, channel=channel, state=event.get("member_state")
                ),
            }
            await self._push("chat.channel.message", params)

    async def chat_member(self, event):
        if self.version == V3 and event["channel"] in self.subscriptions:
            await self._push(
                f"chat.member.{event['change']}",
                {"channel": event["channel"], "member": event["member"]},
            )

    async def _push(self, event_type: str, params: dict) -> None:
        await self._send(
            {
                "jsonrpc": "2.0",
                "id": _event_id(),
                "method": "signalwire.event",
                "params": {"event_type": event_type, "params": params},
            }
        )


def _event_id() -> str:
    return str(uuid.uuid4())
