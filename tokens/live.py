"""Live connections bound to tokens: closing sockets when their token is revoked or expires.

A socket that authenticated with a token joins that token's group on the channel layer (in
memory by default, Redis when REDIS_URL is set, so every server process hears it). Revoking a
token sends `live.close` to its group after the revoking transaction commits; other resources
(a voice session, a chat channel) get groups of their own through `resource_group`.

A channel layer may drop a message (over capacity, Redis restarting), so the group message is
not the only guard: `TokenBoundMixin` also closes the socket at the token's expiry with a
timer, and consumers re-check the token with `token_still_valid()` on each inbound frame.

A socket that loses the channel layer (Redis unreachable or hung: tokens.layers) is closed with
CLOSE_TRY_AGAIN, and one whose handler fails with CLOSE_SERVER_ERROR, so clients reconnect;
either way the socket's groups, timers and the consumer's state are released. Sending to a
group from sync code never raises and waits at most one Redis timeout.

Close codes are documented in the README ("WebSockets and close codes").
"""

import asyncio
import hashlib
import logging
import time

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import DatabaseError

from .errors import DATABASE_UNAVAILABLE
from .layers import ChannelLayerUnavailable

log = logging.getLogger(__name__)

# Names of the asyncio tasks that run a socket's timers (expiry, re-checks, authentication).
TIMER_TASK_PREFIX = "roomkey.live."

# Application close codes (4000-4999 are free for applications, RFC 6455 7.4.2).
CLOSE_BAD_REQUEST = 4000  # the socket was opened wrongly (no token parameter, bad path)
CLOSE_INVALID_TOKEN = 4001  # malformed, badly signed, unknown, wrong kind or other project
CLOSE_AUTH_TIMEOUT = 4002  # no authentication within the allowed time
CLOSE_REVOKED = 4003  # the token was revoked while the socket was open
CLOSE_EXPIRED = 4004  # the token reached its expiry
CLOSE_ENDED = 4005  # the resource (a voice session) was ended by staff or the API
CLOSE_TOO_BIG = 1009  # RFC 6455 "message too big"
# RFC 6455 / IANA codes that tell a client to reconnect: the server failed (a bug), or a
# dependency (the database, the channel layer's Redis) is unavailable, so try again later.
CLOSE_SERVER_ERROR = 1011
CLOSE_TRY_AGAIN = 1013
CLOSE_UNAVAILABLE = CLOSE_TRY_AGAIN

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
    return send_to_groups([(group, message)]) == 1


def send_to_groups(messages: list[tuple[str, dict]]) -> int:
    """group_send for several (group, message) pairs, in order, from sync code; how many the
    layer took. The first failure stops the rest: with the layer unreachable each attempt
    would wait out the Redis timeout again, and the caller's request with it."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return 0
    return async_to_sync(_send_in_order)(layer, messages)


async def _send_in_order(layer, messages) -> int:
    for sent, (group, message) in enumerate(messages):
        try:
            await layer.group_send(group, message)
        except ChannelLayerUnavailable as exc:
            log.warning(
                "channel layer unavailable: %s to %s and %d more not sent (%s)",
                message.get("type"),
                group,
                len(messages) - sent - 1,
                exc,
            )
            return sent
        except Exception:
            log.exception("could not send %s to %s", message.get("type"), group)
            return sent
    return len(messages)


def _close_message(code: int, reason: str) -> dict:
    return {"type": "live.close", "code": code, "reason": reason[:120]}


def close_group(group: str, *, code: int, reason: str = "") -> None:
    """Ask every socket in `group`, in every server process, to close with `code`. The
    revocation or end behind it has committed; the per-frame re-check and the expiry timer
    still stand if the layer fails."""
    send_to_groups([(group, _close_message(code, reason))])


def close_tokens(jtis, *, code: int = CLOSE_REVOKED, reason: str = "revoked") -> None:
    message = _close_message(code, reason)
    send_to_groups([(token_group(jti), message) for jti in jtis])


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
    via `join_group`. Binding another token later moves the socket onto it.

    Whatever way the socket ends — the client's close, ours, or an exception in a handler, a
    timer or the channel layer — `release()` runs once: timers cancelled, `on_release()` (the
    consumer's presence, session state), every group left. Channels itself calls `disconnect()`
    only on a `websocket.disconnect`, which never comes when a handler raises. An exception
    closes the socket with CLOSE_TRY_AGAIN when the channel layer or the database could not be
    reached, CLOSE_SERVER_ERROR otherwise, so clients reconnect.
    """

    bound_jti: str | None = None
    bound_kind: str | None = None
    bound_expires_at: float | None = None
    # Why the socket failed (the close reason and code sent), when an exception ended it.
    failure: str | None = None
    failure_code: int | None = None
    _accepted = False
    _close_sent = False
    _released = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._live_groups: list[str] = []
        self._timers: dict[str, asyncio.Task] = {}

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        except Exception as exc:
            await self._fail(exc)
        finally:
            await self.release(self.failure_code)

    # --- Closing and releasing --------------------------------------------------------------

    async def accept(self, *args, **kwargs):
        self._accepted = True
        await super().accept(*args, **kwargs)

    async def close(self, code=None, reason=None):
        self._close_sent = True
        await super().close(code=code, reason=reason)

    async def disconnect(self, code):
        await self.release(code)

    async def on_release(self, code: int | None) -> None:
        """What the consumer gives back when the socket ends (presence, session state). Runs
        once, before the groups are left; `code` is the close code, if known."""

    async def release(self, code: int | None) -> None:
        """Release everything the socket holds; once, on every way out (see the class)."""
        if self._released:
            return
        self._released = True
        for name in list(self._timers):
            self.cancel_timer(name)
        try:
            await self.on_release(code)
        except Exception:
            log.exception("%s: releasing the socket failed", type(self).__name__)
        await self.unbind_token()

    async def _fail(self, exc: Exception) -> None:
        """An exception ended the socket (or a timer of it): close it with a code that tells
        the client to reconnect, unless the client is gone already."""
        if isinstance(exc, ChannelLayerUnavailable):
            code, reason = CLOSE_TRY_AGAIN, "channel layer unavailable"
            log.warning("%s: %s (%s)", type(self).__name__, reason, str(exc))
        elif isinstance(exc, OSError) and self._accepted:
            # ASGI servers raise an OSError from send() once the client is gone.
            code, reason = CLOSE_SERVER_ERROR, "connection lost"
            log.info("%s: the client went away (%r)", type(self).__name__, str(exc))
        elif isinstance(exc, DATABASE_UNAVAILABLE):
            # Neither a bad token (4001) nor a dropped socket (1006): reconnect later.
            code, reason = CLOSE_TRY_AGAIN, "database unavailable"
            log.warning("%s: %s (%s)", type(self).__name__, reason, str(exc))
        elif isinstance(exc, DatabaseError):
            code, reason = CLOSE_SERVER_ERROR, "server error"
            log.exception("%s: database error", type(self).__name__)
        else:
            code, reason = CLOSE_SERVER_ERROR, "server error"
            log.exception("%s failed", type(self).__name__)
        if self.failure is None:
            self.failure, self.failure_code = reason, code
        if self._close_sent:
            return
        try:
            if not self._accepted:
                # A close before the handshake completes is an HTTP 403, which no client
                # retries: accept, so the close code reaches the client.
                await self.accept()
            await self.close(code=code, reason=reason)
        except Exception:
            log.debug("%s: the socket was gone before it could be closed", type(self).__name__)

    # --- Timers -----------------------------------------------------------------------------

    def start_timer(self, name: str, delay: float, callback) -> None:
        """Run `await callback()` in `delay` seconds, in a task of its own, replacing the
        timer called `name`. An exception in it closes the socket as one in a handler does;
        `release()` cancels every timer."""
        self.cancel_timer(name)
        if self._released:
            return

        async def run():
            await asyncio.sleep(delay)
            try:
                await callback()
            except Exception as exc:
                await self._fail(exc)

        channel = getattr(self, "channel_name", "")
        self._timers[name] = asyncio.create_task(run(), name=f"{TIMER_TASK_PREFIX}{name}:{channel}")

    def cancel_timer(self, name: str) -> None:
        task = self._timers.pop(name, None)
        # A timer that reschedules itself is replaced, not cancelled mid-way.
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    # --- The token and the groups -----------------------------------------------------------

    async def bind_token(self, *, jti: str, kind: str, expires_at: float) -> None:
        previous = self.bound_jti
        if previous is not None and previous != jti:
            await self.leave_group(token_group(previous))
        self.bound_jti, self.bound_kind, self.bound_expires_at = jti, kind, float(expires_at)
        # Memberships are renewed on every bind: groups expire (CHANNEL_GROUP_EXPIRY) some
        # time after the longest token, so a socket moving from token to token stays in them.
        for group in list(self._live_groups):
            await self.channel_layer.group_add(group, self.channel_name)
        await self.join_group(token_group(jti))
        delay = max(0.0, self.bound_expires_at - time.time())
        self.start_timer("expiry", delay, self._expire)

    async def join_group(self, group: str) -> None:
        if group in self._live_groups:
            return
        self._live_groups.append(group)
        await self.channel_layer.group_add(group, self.channel_name)

    async def leave_group(self, group: str) -> None:
        if group in self._live_groups:
            self._live_groups.remove(group)
            await self.channel_layer.group_discard(group, self.channel_name)

    async def unbind_token(self) -> None:
        """Stop the expiry timer and leave every group. When the channel layer is down, the
        remaining memberships are left to lapse: a group_send to a closed socket's channel
        only writes a message that expires unread."""
        self.cancel_timer("expiry")
        for group in list(self._live_groups):
            try:
                await self.leave_group(group)
            except ChannelLayerUnavailable as exc:
                log.warning("%s: could not leave its groups: %s", type(self).__name__, exc)
            except Exception:
                log.exception("%s: could not leave its groups", type(self).__name__)
            else:
                continue
            self._live_groups.clear()
            return

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
