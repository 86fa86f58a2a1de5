"""The voice-session WebSocket, `/v1/connection?token=<voice-session token>`.

The socket is accepted, then closed at once with a close code from tokens.live when the token
is missing (4000), or cannot open a session in any way — malformed, badly signed, of another
kind such as a chat or LiveKit token, unknown, expired, revoked, or of a session already
connected or ended: one answer, 4001 "invalid token", the reason in the log. While open it closes
with 4003 when the token is revoked, 4004 at the token's expiry, 4005 when the session is ended
(admin "End session"), 1009 for a frame over VOICE_FRAME_MAX_BYTES, 1013 when the channel layer
(Redis) is unavailable and 1011 on a server error (tokens.live); then the session ends too,
unless the socket never connected it. Malformed frames get an `{"type": "error"}` event and the
socket stays open.

SocketLimits (limits.sockets): connects and failed authentications per address (4290), the
project's quota of voice sockets (4291) and longest session (4292), frames per socket (an
error event).
"""

import json
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from limits.errors import QuotaExceeded
from limits.sockets import SocketLimits
from tokens import live
from tokens import services as token_services
from tokens.inputs import is_storable_text

from . import kinds, selectors, services
from .conf import agents_settings

log = logging.getLogger(__name__)


class VoiceSessionConsumer(SocketLimits, live.TokenBoundMixin, AsyncWebsocketConsumer):
    session = None
    _closing = False
    limits_kind = "voice"

    # --- Opening ----------------------------------------------------------------------------

    async def connect(self):
        await self.accept()
        if not await self.limits_admit():
            return
        token = self._token_parameter()
        if token is None:
            return await self._refuse(live.CLOSE_BAD_REQUEST, "token parameter required")
        result = await database_sync_to_async(token_services.token_verify)(
            token, kind=kinds.VOICE.name
        )
        if not result.valid:
            return await self._refuse_token(result.reason)
        decoded = result.decoded
        if decoded.claims.get("aud") != kinds.VOICE_AUDIENCE:
            return await self._refuse_token("wrong_kind")
        session = await database_sync_to_async(selectors.voice_session_by_jti)(decoded.jti)
        if session is None or str(session.project_id) != decoded.project_id:
            return await self._refuse_token("unknown")
        try:
            await self.limits_acquire(project_id=session.project_id)
        except QuotaExceeded as exc:
            return await self._refuse(exc.close_code, exc.code)
        # Into the groups before the session is marked connected: if the channel layer is
        # down this raises (the socket closes with 1013) while the session is still issued,
        # so the same token connects once the layer is back.
        await self.bind_token(jti=decoded.jti, kind=result.kind, expires_at=decoded.expires_at)
        await self.join_group(live.resource_group("voicesession", session.pk))
        if not await database_sync_to_async(services.voice_session_connect)(session=session):
            return await self._refuse_token(f"session {session.status}")
        self.session = session
        # A revocation committed between the check above and joining the groups sent its
        # close to nobody: look again now that this socket would hear it.
        reason = await self.token_still_valid()
        if reason is not None:
            return await self.live_closing(reason, self._code_for(reason))
        await self._send_event(services.voice_session_started_event(session))

    def _token_parameter(self) -> str | None:
        try:
            query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        except ValueError:
            return None
        values = query.get("token", [])
        return values[0] if len(values) == 1 and values[0] else None

    async def _refuse_token(self, reason: str) -> None:
        """One refusal for every token that cannot open a session (malformed, badly signed,
        unknown, expired, revoked, of another kind, its session used or ended): the client is
        not told which, as introspection does not tell; the reason goes to the server log."""
        log.info("voice socket refused: %s", reason)
        await self._refuse(live.CLOSE_INVALID_TOKEN, "invalid token")

    async def _refuse(self, code: int, reason: str) -> None:
        self._closing = True
        if code in (live.CLOSE_INVALID_TOKEN, live.CLOSE_REVOKED, live.CLOSE_EXPIRED):
            await self.limits_auth_failed()
        await self.close(code=code, reason=reason[:120])

    @staticmethod
    def _code_for(reason: str) -> int:
        return live.CLOSE_FOR_REASON.get(reason, live.CLOSE_INVALID_TOKEN)

    # --- Frames -----------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if self.session is None or self._closing:
            return
        size = (
            len(text_data.encode("utf-8", "surrogatepass")) if text_data else len(bytes_data or b"")
        )
        if size > agents_settings.VOICE_FRAME_MAX_BYTES:
            return await self.live_closing("frame too large", live.CLOSE_TOO_BIG)
        limited = self.limits_frame("frames")
        if limited is not None:
            event = {"type": "error", "code": limited.code, "message": limited.message}
            return await self._send_event({**event, **limited.extra})
        # The channel layer may have dropped a revocation: every frame re-checks the token.
        reason = await self.token_still_valid()
        if reason is not None:
            return await self.live_closing(reason, self._code_for(reason))
        if text_data is None:
            return await self._error("binary_not_supported", "Send JSON text frames.")
        try:
            frame = json.loads(text_data)
        except (ValueError, RecursionError):
            return await self._error("invalid_json", "The frame is not valid JSON.")
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            return await self._error("invalid_frame", 'A frame is an object with a "type".')
        if frame["type"] == "message":
            return await self._message(frame)
        if frame["type"] == "ping":
            return await self._send_event({"type": "pong"})
        return await self._error("unknown_type", f"Unknown frame type {frame['type'][:50]!r}.")

    async def _message(self, frame: dict) -> None:
        text = frame.get("text")
        limit = agents_settings.VOICE_MESSAGE_MAX_CHARS
        if not isinstance(text, str) or not text.strip():
            return await self._error("invalid_message", '"text" must be a non-empty string.')
        if len(text) > limit:
            return await self._error("message_too_long", f'"text" is over {limit} characters.')
        if not is_storable_text(text):
            return await self._error(
                "invalid_message", '"text" must not contain NUL or unpaired surrogates.'
            )
        message = await database_sync_to_async(services.voice_message_store)(
            session=self.session, text=text
        )
        await self._send_event(
            {
                "type": "message.received",
                "id": str(message.pk),
                "created_at": message.created_at.isoformat().replace("+00:00", "Z"),
                "conversation_id": str(message.chat_message.conversation_id),
            }
        )

    async def _error(self, code: str, message: str) -> None:
        await self._send_event({"type": "error", "code": code, "message": message})

    async def _send_event(self, event: dict) -> None:
        await self.send(text_data=json.dumps(event))

    # --- Closing ----------------------------------------------------------------------------

    async def live_closing(self, reason: str, code: int) -> None:
        if self._closing:
            return
        self._closing = True
        # Closing because the database did not answer: recording the end would wait for it
        # again, past the bound a client is owed its close in.
        if self.session is not None and code != live.CLOSE_UNAVAILABLE:
            await database_sync_to_async(services.voice_session_finish)(
                session=self.session, reason=reason or f"closed ({code})"
            )
        await super().live_closing(reason, code)

    async def on_release(self, code):
        # Whatever ended the socket, its session ends with it (a session has one socket): the
        # client's close, or a failure here (the channel layer lost, a server error).
        if self.session is not None and not self._closing:
            reason = self.failure or "client closed"
            await database_sync_to_async(services.voice_session_finish)(
                session=self.session, reason=f"{reason} ({code})"
            )
