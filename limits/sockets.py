"""Limits of the WebSocket consumers (the chat relay, the voice socket), as a mixin.

- At the handshake, before any token is looked at: the address's connect rate and its budget
  of failed authentications (over either: closed with CLOSE_RATE_LIMITED).
- A refused token counts as a failed authentication of the address.
- Once authenticated: a slot of the project's concurrent-socket quota (a LiveSocket row,
  renewed by this process while it runs, released however the consumer ends); a voice socket
  also closes with CLOSE_SESSION_LENGTH at the project's maximum voice-session length.
- Each counted frame (a relay request, a voice frame) against the socket's rate, in this
  process: a frame over it is answered with an error and the socket stays open.
"""

import asyncio
import functools
import logging

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from . import policy, services
from .conf import limits_settings
from .errors import CLOSE_RATE_LIMITED, CLOSE_SESSION_LENGTH, TooManyRequests

log = logging.getLogger(__name__)

# Counter checks wait on Redis, not the database: off the database thread.
_in_thread = functools.partial(sync_to_async, thread_sensitive=False)


def _acquire(project_id, kind: str):
    slot = services.socket_slot_acquire(project_id=project_id, kind=kind)
    longest = policy.voice_session_max_seconds(project_id) if kind == "voice" else None
    return slot.pk, policy.frame_rate(kind, project_id), longest


class SocketLimits:
    """For Channels consumers, listed before tokens.live.TokenBoundMixin. `limits_kind` is
    "chat" (the relay) or "voice"; call

    - `await self.limits_admit()` right after accepting: False when the socket was refused
      (and closed);
    - `await self.limits_auth_failed()` when its token is refused;
    - `await self.limits_acquire(project_id=…)` once authenticated: raises QuotaExceeded
      (whose `close_code` the socket closes with) when the project's quota is reached;
    - `self.limits_frame(what)` for each counted frame: None, or the TooManyRequests to answer.
    """

    limits_kind = "chat"
    _limits_slot = None
    _limits_timer = None
    _limits_frames: services.FrameWindow | None = None

    async def __call__(self, scope, receive, send):
        # The consumer's whole life: the slot is released however it ends.
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._limits_release()

    def _limits_address(self) -> str | None:
        client = self.scope.get("client")
        return client[0] if client else None

    async def limits_admit(self) -> bool:
        admission = await services.admit_async(self._limits_address(), connect=True)
        if admission.refusal is None:
            return True
        await self.close(code=CLOSE_RATE_LIMITED, reason="rate limited")
        return False

    async def limits_auth_failed(self) -> None:
        await _in_thread(services.auth_failed)(self._limits_address())

    async def limits_acquire(self, *, project_id) -> None:
        if self._limits_slot is not None:  # re-authenticated: the socket holds its slot
            return
        slot, rate, longest = await database_sync_to_async(_acquire)(project_id, self.limits_kind)
        self._limits_slot = slot
        _renew_while_running()
        if self._limits_frames is None:
            self._limits_frames = services.FrameWindow(rate)
        else:  # the frames before authentication count at the project's rate
            self._limits_frames.rate = rate
        if longest is not None:
            self._limits_timer = asyncio.get_running_loop().call_later(
                longest, lambda: asyncio.ensure_future(self._limits_session_over())
            )

    async def _limits_session_over(self) -> None:
        await self.live_closing("session length limit", CLOSE_SESSION_LENGTH)

    def limits_frame(self, what: str) -> TooManyRequests | None:
        if self._limits_frames is None:
            self._limits_frames = services.FrameWindow(policy.frame_rate(self.limits_kind))
        return self._limits_frames.refusal(what)

    async def _limits_release(self) -> None:
        if self._limits_timer is not None:
            self._limits_timer.cancel()
            self._limits_timer = None
        slot, self._limits_slot = self._limits_slot, None
        if slot is None:
            return
        try:
            await database_sync_to_async(services.socket_slot_release)(slot)
        except Exception:  # the lease frees it; the database will be back
            log.exception("could not release socket slot %s", slot)


# --- Renewing this process's slots ----------------------------------------------------------

_renewer: asyncio.Task | None = None


def _renew_while_running() -> None:
    """One task per process (per event loop) renews the leases of its slots."""
    global _renewer
    loop = asyncio.get_running_loop()
    if _renewer is None or _renewer.done() or _renewer.get_loop() is not loop:
        _renewer = loop.create_task(_renew_forever())


async def _renew_forever() -> None:
    while True:
        await asyncio.sleep(limits_settings.SOCKET_LEASE_SECONDS / 3)
        try:
            await database_sync_to_async(services.socket_slots_renew)()
        except Exception:
            log.exception("could not renew this process's socket slots")
