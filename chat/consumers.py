"""The chat relay: `/api/relay/ws`, the WebSocket a chat token's `ch` header names.

It speaks the subset of SignalWire's JSON-RPC 2.0 relay protocol that the real `@signalwire/js`
clients use (README "Chat"): `signalwire.connect` first (version 3 for `Chat.Client`, 4 for
the Fabric client), then `chat.*` requests. The server pushes `signalwire.event` frames that
clients ack. A bad frame gets an error reply and the socket stays open; only a frame over the
size cap, a failed or missing authentication, and a revoked or expired token close it.

Requests are refused with tokens.errors' vocabulary, answered by chat.errors.relay_answer:
protocol-level faults (not JSON, not a request, unknown method, not yet authenticated) are
JSON-RPC errors; a `chat.*` request the token does not allow or whose params are wrong gets a
result with a non-2xx `code`, as SignalWire answers (both reject the client's promise).
"""

import asyncio
import logging
import time
import uuid

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from tokens import live
from tokens.errors import ApplicationError, BadInput, BadRequest, Forbidden, NotFound, Unauthorized
from tokens.inputs import compact_json, loads_strict

from . import events, selectors, services, validation
from .auth import ChatGrant, chat_grant
from .conf import chat_settings
from .errors import ChatAuthError, InvalidChannelName, NotGranted, relay_answer
from .models import Message
from .names import clean_channel_name

log = logging.getLogger(__name__)

V3, V4 = 3, 4
MEMBERS_MAX = 1000  # members listed by chat.members.get
CHANNELS_PER_REQUEST_MAX = 500  # as many as a token can grant


class RelayConsumer(live.TokenBoundMixin, AsyncWebsocketConsumer):
    """One client socket. It lives on one chat token (TokenBoundMixin: closed on revocation
    in any process and at expiry), listens to the channel-layer group of each channel it
    subscribed to (v3) or can read (v4), and renders `chat.message` / `chat.member` events for
    its protocol version. Channels serialises a consumer's frames and events, so no locking."""

    grant: ChatGrant | None = None
    version: int | None = None

    # --- Lifecycle --------------------------------------------------------------------------

    async def connect(self):
        self.subscriptions: dict[str, object] = {}  # channel name -> Conversation
        self._auth_timer = None
        self._recheck_timer = None
        self._checked_at = 0.0
        await self.accept()
        loop = asyncio.get_running_loop()
        self._auth_timer = loop.call_later(
            chat_settings.AUTH_TIMEOUT_SECONDS,
            lambda: asyncio.ensure_future(self._auth_timed_out()),
        )

    async def _auth_timed_out(self):
        if self.grant is None:
            await self.close(code=live.CLOSE_AUTH_TIMEOUT, reason="authentication timeout")

    async def disconnect(self, code):
        for timer in (self._auth_timer, self._recheck_timer):
            if timer is not None:
                timer.cancel()
        if self.subscriptions:
            names = list(self.subscriptions)
            await self._leave(names)
        await self.unbind_token()

    # --- Frames -----------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > chat_settings.MAX_FRAME_BYTES:
            await self.close(code=live.CLOSE_TOO_BIG, reason="frame too big")
            return
        if text_data is None:
            await self._refuse(None, BadRequest("Frames must be text (JSON)."))
            return
        try:
            frame = loads_strict(text_data)
        except (ValueError, RecursionError):
            error = BadRequest("Parse error: the frame is not JSON.", code="parse_error")
            await self._refuse(None, error)
            return
        if not isinstance(frame, dict):
            await self._refuse(None, BadRequest("A request must be a JSON object."))
            return
        rid = frame.get("id")
        if not isinstance(rid, str | int) or isinstance(rid, bool):
            rid = None
        if "method" not in frame:
            if ("result" in frame or "error" in frame) and rid is not None:
                # The client's ack of an event (or answer to a ping). Acks come one per event
                # per socket, so they re-check the token at most once a second.
                if self.grant is not None and time.monotonic() - self._checked_at > 1.0:
                    await self._recheck()
                return
            await self._refuse(rid, BadRequest("A request needs a method."))
            return
        method, params = frame.get("method"), frame.get("params", {})
        if frame.get("jsonrpc") != "2.0" or not isinstance(method, str) or rid is None:
            error = BadRequest('A request needs "jsonrpc": "2.0", a method and an id.')
            await self._refuse(rid, error)
            return
        if not isinstance(params, dict):
            await self._refuse(rid, BadRequest("params must be an object.", code="invalid_params"))
            return
        # The channel layer may have dropped a revocation; every request re-checks.
        if self.grant is not None and not await self._recheck():
            return
        try:
            result = await self._dispatch(method, params)
        except ApplicationError as exc:
            await self._refuse(rid, exc)
            return
        except Exception:
            # A bug or a database outage must not take the socket down with it.
            log.exception("relay request %s failed", method)
            await self._refuse(rid, ApplicationError())
            return
        await self._send({"jsonrpc": "2.0", "id": rid, "result": result})

    async def _recheck(self) -> bool:
        """Is the token still usable? If not, close the socket (and say False)."""
        self._checked_at = time.monotonic()
        reason = await self.token_still_valid()
        if reason is None:
            return True
        await self.live_closing(reason, live.CLOSE_FOR_REASON.get(reason, live.CLOSE_INVALID_TOKEN))
        return False

    def _schedule_recheck(self) -> None:
        # A socket that sends nothing (a Fabric client that only listens) is still re-checked
        # now and then, in case the layer dropped its revocation.
        async def tick():
            if await self._recheck():
                self._schedule_recheck()

        loop = asyncio.get_running_loop()
        self._recheck_timer = loop.call_later(
            chat_settings.RECHECK_SECONDS, lambda: asyncio.ensure_future(tick())
        )

    async def _send(self, payload) -> None:
        await self.send(text_data=compact_json(payload))

    async def _refuse(self, rid, error: ApplicationError) -> None:
        """Answer request `rid` with `error` (chat.errors.relay_answer), closing the socket
        when the error says so."""
        frame, close = relay_answer(rid, error)
        await self._send(frame)
        if close is not None:
            code, reason = close
            await self.close(code=code, reason=reason)

    async def _dispatch(self, method: str, params: dict):
        if method == "signalwire.connect":
            return await self._connect(params)
        if method == "signalwire.ping":
            return {"timestamp": time.time()}
        if self.grant is None:
            raise Unauthorized("Send signalwire.connect first.", code="not_authenticated")
        if method == "signalwire.reauthenticate":
            return await self._reauthenticate(params)
        handler = self.HANDLERS.get(method)
        if handler is None:
            raise NotFound(f"Method not found: {method[:100]}", code="method_not_found")
        return await handler(self, params)

    # --- signalwire.connect -----------------------------------------------------------------

    async def _connect(self, params: dict) -> dict:
        if self.grant is not None:
            raise BadRequest("Already connected.")
        version = params.get("version")
        major = version.get("major") if isinstance(version, dict) else None
        if major not in (V3, V4) or isinstance(major, bool):
            message = "version.major must be 3 (chat) or 4 (Fabric)."
            raise BadRequest(message, code="invalid_params")
        grant = await self._grant_of(params)
        self.grant, self.version = grant, major
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None
        await self.bind_token(jti=grant.jti, kind="chat", expires_at=grant.expires_at)
        self._checked_at = time.monotonic()
        self._schedule_recheck()
        if major == V4:
            await self._join_fabric_groups()
        return self._connect_result()

    async def _grant_of(self, params: dict) -> ChatGrant:
        """The grant of `authentication.jwt_token`, or ChatAuthError for a token that is not
        a usable chat token (answered, then the socket closes)."""
        auth = params.get("authentication")
        token = auth.get("jwt_token") if isinstance(auth, dict) else None
        if not isinstance(token, str):
            raise BadRequest("authentication.jwt_token is required.", code="invalid_params")
        return await database_sync_to_async(chat_grant)(token)

    async def _reauthenticate(self, params: dict) -> dict:
        """`signalwire.reauthenticate` (the v3 client's token refresh): the socket moves to a
        fresh token of the same project and member; a refused token leaves it as it was."""
        try:
            grant = await self._grant_of(params)
        except ChatAuthError as exc:
            # The same answer as at connect, but the socket stays open on its current token.
            raise Unauthorized(exc.message, code=exc.code) from None
        old = self.grant
        if grant.project.pk != old.project.pk or grant.member_id != old.member_id:
            message = "The new token must be for the same member."
            raise Unauthorized(message, code=ChatAuthError.code)
        # Off the old token (its revocation no longer concerns this socket), onto the new.
        if self._expiry_handle is not None:
            self._expiry_handle.cancel()
            self._expiry_handle = None
        await self.leave_group(live.token_group(old.jti))
        self.grant = grant
        await self.bind_token(jti=grant.jti, kind="chat", expires_at=grant.expires_at)
        await self._leave([n for n in self.subscriptions if not grant.can_read(n)])
        if self.version == V4:
            for name in old.readable():
                if not grant.can_read(name):
                    await self.leave_group(events.channel_group(grant.project.pk, name))
            await self._join_fabric_groups()
        return self._connect_result()

    def _connect_result(self) -> dict:
        grant, major = self.grant, self.version
        project_id = str(grant.project.pk)
        authorization = {
            "type": "chat",
            "project_id": project_id,
            "member_id": grant.member_id,
            "channels": grant.channels,
            "expires_at": grant.expires_at,
            "signature": grant.jti,
        }
        if major == V4:
            # The Fabric client reads a SAT-style authorization: `jti` marks it, and the
            # expiry is read from `fabric_subscriber`.
            authorization.update(
                jti=grant.jti,
                fabric_subscriber={
                    "id": grant.member_id,
                    "expires_at": grant.expires_at,
                    "project_id": project_id,
                },
            )
        return {
            "identity": grant.member_id,
            "protocol": f"roomkey_{grant.jti}",
            "authorization": authorization,
        }

    async def _join_fabric_groups(self):
        # Fabric clients subscribe without asking: every channel the token can read.
        for name in self.grant.readable():
            await self.join_group(events.channel_group(self.grant.project.pk, name))

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
