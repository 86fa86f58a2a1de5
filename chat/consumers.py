"""The chat relay: `/api/relay/ws`, the WebSocket a chat token's `ch` header names.

It speaks the subset of SignalWire's JSON-RPC 2.0 relay protocol that the real `@signalwire/js`
clients use (README "Chat"): `signalwire.connect` first (version 3 for `Chat.Client`, 4 for
the Fabric client), then `chat.*` requests. The server pushes `signalwire.event` frames that
clients ack. A bad frame gets an error reply and the socket stays open; only a frame over the
size cap, a failed or missing authentication, and a revoked or expired token close it. The
`chat.*` methods and the events a socket renders are chat.relay_methods.

Requests are refused with tokens.errors' vocabulary, answered by chat.errors.relay_answer:
protocol-level faults (not JSON, not a request, unknown method, not yet authenticated) are
JSON-RPC errors; a `chat.*` request the token does not allow or whose params are wrong gets a
result with a non-2xx `code`, as SignalWire answers (both reject the client's promise).
"""

import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from limits.sockets import SocketLimits
from tokens import live
from tokens.errors import (
    DATABASE_UNAVAILABLE,
    ApplicationError,
    BadInput,
    BadRequest,
    DatabaseUnavailable,
    NotFound,
    Unauthorized,
)
from tokens.inputs import (
    UNSTORABLE_TEXT,
    encodable_json,
    is_storable_text,
    loads_strict,
    unstorable_text_at,
)

from . import events
from .auth import ChatGrant, chat_grant
from .conf import chat_settings
from .errors import ChatAuthError, relay_answer
from .relay_methods import V3, V4, ChatMethods

log = logging.getLogger(__name__)


class RelayConsumer(ChatMethods, SocketLimits, live.TokenBoundMixin, AsyncWebsocketConsumer):
    """One client socket. It lives on one chat token (TokenBoundMixin: closed on revocation
    in any process and at expiry), listens to the channel-layer group of each channel it
    subscribed to (v3) or can read (v4), and renders `chat.message` / `chat.member` events for
    its protocol version. Channels serialises a consumer's frames and events, so no locking.
    SocketLimits: connects per address, a slot of the project's socket quota, requests per
    socket."""

    # --- Lifecycle --------------------------------------------------------------------------

    async def connect(self):
        self.subscriptions: dict[str, object] = {}  # channel name -> Conversation
        self._checked_at = 0.0
        await self.accept()
        if not await self.limits_admit():
            return
        self.start_timer("auth", chat_settings.AUTH_TIMEOUT_SECONDS, self._auth_timed_out)

    async def _auth_timed_out(self):
        if self.grant is None:
            await self.close(code=live.CLOSE_AUTH_TIMEOUT, reason="authentication timeout")

    async def on_release(self, code):
        # The mixin leaves the channel groups; the member's presence is ours to give back, in
        # the channels where this socket was counted (a subscription a failure cut short before
        # its rows were written holds None).
        subscriptions, self.subscriptions = getattr(self, "subscriptions", {}), {}
        names = [name for name, conversation in subscriptions.items() if conversation is not None]
        if names:
            await database_sync_to_async(self._leave_rows)(names)

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
        elif isinstance(rid, str) and not is_storable_text(rid):
            rid = None  # an id that cannot be written back is answered with null
        if "method" not in frame:
            if ("result" in frame or "error" in frame) and rid is not None:
                # The client's ack of an event (or answer to a ping). Acks come one per event
                # per socket, so they re-check the token at most once a second.
                if self.grant is not None and time.monotonic() - self._checked_at > 1.0:
                    await self._recheck()
                return
            await self._refuse(rid, BadRequest("A request needs a method."))
            return
        # Where every request enters: its strings are checked here, once (an ack's content is
        # never read, so it is not).
        path = unstorable_text_at(frame)
        if path is not None:
            await self._refuse(rid, self._unstorable(frame, path))
            return
        method, params = frame.get("method"), frame.get("params", {})
        if frame.get("jsonrpc") != "2.0" or not isinstance(method, str) or rid is None:
            error = BadRequest('A request needs "jsonrpc": "2.0", a method and an id.')
            await self._refuse(rid, error)
            return
        if not isinstance(params, dict):
            await self._refuse(rid, BadRequest("params must be an object.", code="invalid_params"))
            return
        limited = self.limits_frame("requests")
        if limited is not None:
            await self._refuse(rid, limited)
            return
        # The channel layer may have dropped a revocation; every request re-checks.
        if self.grant is not None and not await self._recheck():
            return
        try:
            result = await self._dispatch(method, params)
        except ApplicationError as exc:
            await self._refuse(rid, exc)
            return
        except DATABASE_UNAVAILABLE:
            await self._refuse(rid, DatabaseUnavailable())
            return
        except live.ChannelLayerUnavailable:
            # Half-joined groups would leave the socket deaf: it closes (1013), the client
            # reconnects and joins again.
            raise
        except Exception:
            # A bug must not take the socket down with it.
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
        self.start_timer("recheck", chat_settings.RECHECK_SECONDS, self._idle_recheck)

    async def _idle_recheck(self) -> None:
        if await self._recheck():
            self._schedule_recheck()

    def _unstorable(self, frame: dict, path: tuple) -> ApplicationError:
        """The refusal of a request with a NUL or lone surrogate at `path`: in a `chat.*`
        request's params, bad input naming its attribute (a "400" result, as every other bad
        param of those); anywhere else a JSON-RPC error."""
        if path[:1] != ("params",):
            return BadRequest(UNSTORABLE_TEXT, code="invalid_request")
        method = frame.get("method")
        if isinstance(method, str) and method in self.HANDLERS:
            return BadInput(UNSTORABLE_TEXT, field=".".join(map(str, path[1:])) or None)
        return BadRequest(UNSTORABLE_TEXT, code="invalid_params")

    async def _send(self, payload) -> None:
        await self.send(text_data=encodable_json(payload))

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
        await self.limits_acquire(project_id=grant.project.pk)
        self.grant, self.version = grant, major
        self.cancel_timer("auth")
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
        try:
            return await database_sync_to_async(chat_grant)(token)
        except ChatAuthError:
            await self.limits_auth_failed()
            raise

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
