"""Live connections bound to tokens: closing sockets when their token is revoked or expires.

A socket that authenticated with a token joins that token's group on the channel layer (in
memory by default, Redis when REDIS_URL is set, so every server process hears it). Revoking a
token sends `live.close` to its group after the revoking transaction commits; other resources
(a voice session, a chat channel) get groups of their own through `resource_group`.

A channel layer may drop a message (over capacity, Redis restarting), so the group message is
not the only guard: `TokenBoundMixin` also closes the socket at the token's expiry with a
timer, and consumers re-check the token with `token_still_valid()` on each inbound frame.

Close codes are documented in the README ("WebSocket close codes").
"""

import asyncio
import hashlib
import logging
import time

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from .errors import DATABASE_UNAVAILABLE

log = logging.getLogger(__name__)

# Application close codes (4000-4999 are free for applications, RFC 6455 7.4.2).
CLOSE_BAD_REQUEST = 4000  # the socket was opened wrongly (no token parameter, bad path)
CLOSE_INVALID_TOKEN = 4001  # malformed, badly signed, unknown, wrong kind or other project
CLOSE_AUTH_TIMEOUT = 4002  # no authentication within the allowed time
CLOSE_REVOKED = 4003  # the token was revoked while the socket was open
CLOSE_EXPIRED = 4004  # the token reached its expiry
CLOSE_ENDED = 4005  # the resource (a voice session) was ended by staff or the API
CLOSE_TOO_BIG = 1009  # RFC 6455 "message too big"
CLOSE_UNAVAILABLE = 1013  # RFC 6455 "try again later": the database could not be asked

CLOSE_FOR_REASON = {
    "revoked": CLOSE_REVOKED,
    "expired": CLOSE_EXPIRED,
    "unavailable": CLOSE_UNAVAILABLE,
}


def _group(prefix: str, value: str) -> str:
    # Channels allows group names of ASCII letters, digits, "-", "_" and "." under 100
    # characters; jtis and resource ids from other systems need not fit, so they are hashed.
    return f"rk.{prefix}." + hashlib.sha256(value.encode()).hexdigest()[:40]


def token_group(jti: str) -> str:
    return _group("tok", jti)


def resource_group(kind: str, ident) -> str:
    """Group of every socket attached to one resource, e.g. ("voicesession", id)."""
    return _group(kind, f"{kind}:{ident}")


def group_send(group: str, message: dict) -> bool:
    """Send `message` to a channel-layer group from sync code (transaction.on_commit callbacks
    included), to every server process. A layer failure is logged, not raised: what the message
    reports has committed already, and the database stays the record (histories, re-checks).
    Returns whether the layer took it."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:
        log.exception("could not send %s to %s", message.get("type"), group)
        return False
    return True


def close_group(group: str, *, code: int, reason: str = "") -> None:
    """Ask every socket in `group`, in every server process, to close with `code`. The
    revocation or end behind it has committed; the per-frame re-check and the expiry timer
    still stand if the layer fails."""
    group_send(group, {"type": "live.close", "code": code, "reason": reason[:120]})


def close_tokens(jtis, *, code: int = CLOSE_REVOKED, reason: str = "revoked") -> None:
    for jti in jtis:
        close_group(token_group(jti), code=code, reason=reason)


def _on_tokens_revoked(sender, jtis, **kwargs):
    close_tokens(jtis)


def connect_signals() -> None:
    from .signals import tokens_revoked

    tokens_revoked.connect(_on_tokens_revoked, dispatch_uid="tokens.live.close_on_revoke")


class TokenBoundMixin:
    """For Channels consumers whose socket lives on one token.

    After authenticating, call `await self.bind_token(jti=…, kind=…, expires_at=<epoch s>)`.
    The socket then closes with CLOSE_REVOKED when the token is revoked (any process), with
    CLOSE_EXPIRED at expiry, and with the sender's code on a `live.close` to any group it joined
    via `join_group`. Call `await self.unbind_token()` from `disconnect`.
    """

    bound_jti: str | None = None
    bound_kind: str | None = None
    bound_expires_at: float | None = None
    _live_groups: list
    _expiry_handle = None

    async def bind_token(self, *, jti: str, kind: str, expires_at: float) -> None:
        self.bound_jti, self.bound_kind, self.bound_expires_at = jti, kind, float(expires_at)
        await self.join_group(token_group(jti))
        delay = max(0.0, self.bound_expires_at - time.time())
        loop = asyncio.get_running_loop()
        self._expiry_handle = loop.call_later(delay, lambda: asyncio.ensure_future(self._expire()))

    async def join_group(self, group: str) -> None:
        if not hasattr(self, "_live_groups"):
            self._live_groups = []
        if group in self._live_groups:
            return
        self._live_groups.append(group)
        await self.channel_layer.group_add(group, self.channel_name)

    async def leave_group(self, group: str) -> None:
        if group in getattr(self, "_live_groups", []):
            self._live_groups.remove(group)
            await self.channel_layer.group_discard(group, self.channel_name)

    async def unbind_token(self) -> None:
        if self._expiry_handle is not None:
            self._expiry_handle.cancel()
            self._expiry_handle = None
        for group in list(getattr(self, "_live_groups", [])):
            await self.leave_group(group)

    async def token_still_valid(self) -> str | None:
        """None while the bound token is usable, else the reason ("expired", "revoked", or
        "unavailable" when the database cannot be asked)."""
        if self.bound_jti is None:
            return "unknown"
        if self.bound_expires_at is not None and time.time() >= self.bound_expires_at:
            return "expired"
        try:
            return await _revocation_state(self.bound_jti)
        except DATABASE_UNAVAILABLE as exc:
            log.warning("token re-check: database unavailable: %s", exc)
            return "unavailable"

    async def dispatch(self, message):
        """A database that cannot be asked while a frame or event is handled (a token checked
        at connect, a write) closes the socket with 1013, so the client reconnects later: it
        is neither a bad token (4001) nor a dropped socket (1006)."""
        try:
            await super().dispatch(message)
        except DATABASE_UNAVAILABLE as exc:
            if message.get("type") == "websocket.disconnect":
                raise
            log.warning("%s: database unavailable: %s", type(self).__name__, exc)
            await self.close(code=CLOSE_UNAVAILABLE, reason="database unavailable")

    async def _expire(self) -> None:
        await self.live_closing("expired", CLOSE_EXPIRED)

    async def live_close(self, event) -> None:
        """Channel-layer handler for {"type": "live.close", "code", "reason"}."""
        await self.live_closing(event.get("reason", ""), int(event.get("code", CLOSE_REVOKED)))

    async def live_closing(self, reason: str, code: int) -> None:
        """Close the socket. Consumers override to record why (then call super())."""
        await self.close(code=code, reason=reason[:120] or None)


def _read_revocation_state(jti: str) -> str | None:
    from .models import IssuedToken

    rows = list(IssuedToken.objects.filter(pk=jti).values_list("revoked_at", flat=True)[:1])
    if not rows:
        return "unknown"
    return "revoked" if rows[0] is not None else None


# Not on the one thread every consumer's database calls share by default (thread_sensitive):
# when the database is slow or down, each socket's re-check would wait for all the others'.
_revocation_state = database_sync_to_async(_read_revocation_state, thread_sensitive=False)
