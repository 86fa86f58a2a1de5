"""The Redis channel layer Roomkey runs on when REDIS_URL is set: channels_redis's, failing fast.

- Every Redis call is bounded. Each host's connection pool sets `socket_timeout` (and
  `socket_connect_timeout`), and the blocking read that waits for a process's messages (BZPOPMIN)
  blocks for half the socket timeout, so on an idle process it returns, empty, before the
  timeout fires. (channels_redis blocks 5 s; redis-py 8's default socket timeout is 5 s, so
  every idle read failed and took its socket down.)
- A Redis fault (refused, reset, timed out) raises ChannelLayerUnavailable, whatever the call.
- Every socket of a process receives through the same Redis read, one receiver at a time. When
  that read fails, every receiver of the process is told at once, instead of each finding out
  in turn (a hung Redis would take one socket timeout per socket).

Live sockets (tokens.live) close with 1013 on ChannelLayerUnavailable so clients reconnect.
"""

import asyncio
import contextlib
import logging
import weakref

from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# What a failing link to Redis raises: redis-py's errors, and the OS's (timeouts included).
REDIS_FAULTS = (RedisError, OSError)


def is_redis_fault(error: BaseException) -> bool:
    # Under uvloop, a pooled connection whose socket was reset while idle raises RuntimeError
    # ("... the handler is closed") on its next write instead of an OSError.
    return isinstance(error, REDIS_FAULTS) or (
        isinstance(error, RuntimeError) and "handler is closed" in str(error)
    )


class ChannelLayerUnavailable(Exception):
    """The channel layer (Redis) is unreachable or did not answer in time."""


async def _cancel_and_wait(task: asyncio.Task) -> None:
    """Cancel `task` and wait until it has finished, even if cancelled meanwhile (then the
    cancellation is raised afterwards). The cancel is repeated: on Python 3.11, asyncio.wait_for
    (redis-py's send) drops a cancellation that lands as the call it wraps completes, and the
    reader would go on reading forever, holding the process's read lock."""
    interrupted = False
    while not task.done():
        task.cancel()
        try:
            await asyncio.wait([task], timeout=0.1)
        except asyncio.CancelledError:
            interrupted = True
    if interrupted:
        raise asyncio.CancelledError


class RedisChannelLayer(BaseRedisChannelLayer):
    """channels_redis's RedisChannelLayer with bounded calls (see the module). Each entry of
    `hosts` is a dict `{"address": url, "socket_timeout": s, "socket_connect_timeout": s}`
    (config/settings.py builds it); a host without a socket timeout is refused."""

    def __init__(self, hosts=None, **kwargs):
        super().__init__(hosts=hosts, **kwargs)
        timeouts = [host.get("socket_timeout") for host in self.hosts]
        if not timeouts or any(not t or t <= 0 for t in timeouts):
            raise ImproperlyConfigured(
                "Each channel-layer host needs a positive socket_timeout (config/settings.py)."
            )
        self.brpop_timeout = min(timeouts) / 2
        # Per event loop: the future the next failed read resolves, waking every receiver.
        self._read_failed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _failure_signal(self) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        signal = self._read_failed.get(loop)
        if signal is None or signal.done():
            signal = self._read_failed[loop] = loop.create_future()
        return signal

    @contextlib.asynccontextmanager
    async def _faults_as_unavailable(self, what: str):
        try:
            yield
        except Exception as exc:
            if not is_redis_fault(exc):
                raise
            await self._drop_connections()
            raise ChannelLayerUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc

    async def _drop_connections(self) -> None:
        """After a fault, disconnect this loop's idle pooled connections: ones the fault reset
        while idle would each fail once more after Redis is back (redis-py 8 does not check
        them before use). Connections in use are left to their callers."""
        for index in range(self.ring_size):
            pool = self.connection(index).connection_pool
            try:
                await pool.disconnect(inuse_connections=False)
            except Exception as exc:  # closing what is broken anyway
                log.debug("closing idle Redis connections after a fault: %s", exc)

    async def receive(self, channel):
        signal = self._failure_signal()
        receiving = asyncio.ensure_future(super().receive(channel))
        try:
            await asyncio.wait([receiving, signal], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # channels_redis keeps a message being read for the next read.
            await _cancel_and_wait(receiving)
            raise
        if receiving.done():
            error = receiving.exception()
            if error is None:
                return receiving.result()
            if not is_redis_fault(error):
                raise error
            if not signal.done():
                signal.set_result(None)
            await self._drop_connections()
            raise ChannelLayerUnavailable(f"receive: {type(error).__name__}: {error}") from error
        await _cancel_and_wait(receiving)
        raise ChannelLayerUnavailable("receive: this process's read from Redis failed")

    async def send(self, channel, message):
        async with self._faults_as_unavailable("send"):
            await super().send(channel, message)

    async def group_add(self, group, channel):
        async with self._faults_as_unavailable("group_add"):
            await super().group_add(group, channel)

    async def group_discard(self, group, channel):
        async with self._faults_as_unavailable("group_discard"):
            await super().group_discard(group, channel)

    async def group_send(self, group, message):
        async with self._faults_as_unavailable("group_send"):
            await super().group_send(group, message)
