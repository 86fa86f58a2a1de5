"""The counters behind rate limits: atomic across server processes, one round trip per check.

With Redis (ROOMKEY_LIMITS["REDIS_URL"], by default the REDIS_URL every process shares) a
check is one Lua script: for each counter, INCR and, on the first hit of a window, PEXPIRE; or
a plain read. Without Redis they live in Django's cache (`add` + `incr`, atomic in the
in-memory cache of a single-process server and in the shared caches).

Redis has its own short timeouts here, and no retries: a check that cannot reach Redis raises
CountersUnavailable, and Redis is left alone for REDIS_RETRY_SECONDS, so an outage costs each
request at most one timeout per interval per process. What a caller does then (fail open or
closed) is limits.services'.
"""

import asyncio
import hashlib
import logging
import threading
import time
import weakref
from collections.abc import Sequence
from typing import NamedTuple

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.signals import setting_changed

from .conf import limits_settings
from .resp import LoopConnection, RedisReplyError

log = logging.getLogger(__name__)


class CountersUnavailable(Exception):
    """The counters cannot be reached (Redis down, slow or refusing)."""


class Count(NamedTuple):
    """A counter after a check: its value and the seconds left in its window (0: no window
    yet, for a counter read but never hit)."""

    value: int
    reset: float


# KEYS[i] is hit (window ARGV[i] ms > 0) or only read (ARGV[i] = 0). Returns the value and the
# milliseconds left of each: INCR, and PEXPIRE on a window's first hit, in one atomic step.
_HIT_SCRIPT = """
local out = {}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[i])
  local value
  if window > 0 then
    value = redis.call('INCR', key)
    if value == 1 then redis.call('PEXPIRE', key, window) end
  else
    value = tonumber(redis.call('GET', key) or '0')
  end
  local ttl = redis.call('PTTL', key)
  if ttl == -1 and window > 0 then
    redis.call('PEXPIRE', key, window)
    ttl = window
  end
  out[#out + 1] = value
  out[#out + 1] = math.max(ttl, 0)
end
return out
"""


class RedisCounters:
    """The counters in Redis. Each check takes an idle connection of its own (a small stack
    under a lock) and speaks EVALSHA on it directly: redis-py's client layer (pool, retries,
    metrics) would cost an issuance request more than the round trip itself."""

    MAX_IDLE = 32

    def __init__(self, url: str, *, timeout: float, retry_after: float):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._redis = redis
        self._url = url
        self._timeout = timeout
        client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        # Idle connections of each event loop (limits.asgi): they cannot cross loops.
        self._loop_idle: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._client = client  # for clear()
        self._pool = client.connection_pool
        self._sha = hashlib.sha1(_HIT_SCRIPT.encode()).hexdigest()  # noqa: S324  (Redis' own name)
        self._idle: list = []
        self._lock = threading.Lock()
        self._retry_after = retry_after
        self._down_until = 0.0

    def _run(self, conn, keys: list[str], args: list[int]):
        try:
            conn.send_command("EVALSHA", self._sha, len(keys), *keys, *args)
            return conn.read_response()
        except self._redis.exceptions.NoScriptError:  # a restarted or flushed Redis
            conn.send_command("EVAL", _HIT_SCRIPT, len(keys), *keys, *args)
            return conn.read_response()

    def hit(self, items: Sequence[tuple[str, float]]) -> list[Count]:
        """`items`: (key, window seconds to count a hit in, or 0 to read only)."""
        if time.monotonic() < self._down_until:
            raise CountersUnavailable("Redis was unreachable a moment ago")
        keys = [key for key, _ in items]
        windows = [int(window * 1000) for _, window in items]
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._pool.make_connection()
        try:
            flat = self._run(conn, keys, windows)
        except Exception as exc:  # RedisError, OSError, a transport closed under us
            conn.disconnect()
            self._down_until = time.monotonic() + self._retry_after
            log.warning("rate-limit counters unavailable: %s", exc)
            raise CountersUnavailable(str(exc)) from exc
        with self._lock:
            if len(self._idle) < self.MAX_IDLE:
                self._idle.append(conn)
                conn = None
        if conn is not None:
            conn.disconnect()
        return [Count(int(flat[i]), flat[i + 1] / 1000) for i in range(0, len(flat), 2)]

    async def hit_async(self, items: Sequence[tuple[str, float]]) -> list[Count]:
        """`hit` on the running event loop, with connections of that loop (limits.resp)."""
        if time.monotonic() < self._down_until:
            raise CountersUnavailable("Redis was unreachable a moment ago")
        keys = [key for key, _ in items]
        windows = [int(window * 1000) for _, window in items]
        idle = self._loop_idle.setdefault(asyncio.get_running_loop(), [])
        conn = idle.pop() if idle else None
        try:
            async with asyncio.timeout(self._timeout):
                if conn is None:
                    conn = await LoopConnection.open(self._url)
                try:
                    flat = await conn.call("EVALSHA", self._sha, len(keys), *keys, *windows)
                except RedisReplyError as exc:
                    if not str(exc).startswith("NOSCRIPT"):
                        raise
                    flat = await conn.call("EVAL", _HIT_SCRIPT, len(keys), *keys, *windows)
        except Exception as exc:  # refused, reset, timed out, an error reply
            if conn is not None:
                conn.close()
            self._down_until = time.monotonic() + self._retry_after
            log.warning("rate-limit counters unavailable: %s", exc)
            raise CountersUnavailable(str(exc)) from exc
        except BaseException:  # cancelled mid-reply: the connection's state is unknown
            if conn is not None:
                conn.close()
            raise
        if len(idle) < self.MAX_IDLE:
            idle.append(conn)
        else:
            conn.close()
        return [Count(int(flat[i]), flat[i + 1] / 1000) for i in range(0, len(flat), 2)]

    def clear(self, prefix: str) -> None:
        keys = list(self._client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            self._client.delete(*keys)


class CacheCounters:
    """Counters in Django's default cache: a value key and, beside it, the window's end."""

    def hit(self, items: Sequence[tuple[str, float]]) -> list[Count]:
        from django.core.cache import cache

        now = time.time()
        counts = []
        for key, window in items:
            if window <= 0:
                found = cache.get_many([key, key + ":end"])
                end = found.get(key + ":end", now)
                counts.append(Count(int(found.get(key, 0)), max(0.0, end - now)))
                continue
            if cache.add(key, 1, timeout=window):
                cache.set(key + ":end", now + window, timeout=window)
                counts.append(Count(1, window))
                continue
            try:
                value = cache.incr(key)
            except ValueError:  # the window ended between add and incr: a new one starts
                cache.set(key, 1, timeout=window)
                cache.set(key + ":end", now + window, timeout=window)
                counts.append(Count(1, window))
                continue
            end = cache.get(key + ":end", now + window)
            counts.append(Count(value, max(0.0, end - now)))
        return counts

    async def hit_async(self, items: Sequence[tuple[str, float]]) -> list[Count]:
        # A shared cache is a network round trip: off the event loop.
        return await sync_to_async(self.hit, thread_sensitive=False)(items)

    def clear(self, prefix: str) -> None:
        from django.core.cache import cache

        cache.clear()


class LocalCounters:
    """Counters in this process's memory, when Django's cache is too (the in-memory default:
    the same counts, without pickling every value through the cache's API)."""

    MAX_KEYS = 100_000

    def __init__(self):
        self._values: dict[str, list] = {}  # key -> [value, monotonic end of window]
        self._lock = threading.Lock()

    def hit(self, items: Sequence[tuple[str, float]]) -> list[Count]:
        now = time.monotonic()
        counts = []
        with self._lock:
            for key, window in items:
                entry = self._values.get(key)
                if entry is not None and entry[1] <= now:
                    entry = None
                if window <= 0:
                    counts.append(Count(entry[0], entry[1] - now) if entry else Count(0, 0.0))
                    continue
                if entry is None:
                    if len(self._values) >= self.MAX_KEYS:
                        self._values = {k: e for k, e in self._values.items() if e[1] > now}
                    entry = self._values[key] = [0, now + window]
                entry[0] += 1
                counts.append(Count(entry[0], entry[1] - now))
        return counts

    async def hit_async(self, items: Sequence[tuple[str, float]]) -> list[Count]:
        return self.hit(items)

    def clear(self, prefix: str) -> None:
        with self._lock:
            self._values.clear()


_lock = threading.Lock()
_backend: tuple[str, RedisCounters | LocalCounters | CacheCounters] | None = None


def redis_url() -> str:
    configured = limits_settings.REDIS_URL
    return configured if configured is not None else getattr(settings, "REDIS_URL", "")


def _make() -> tuple[str, RedisCounters | LocalCounters | CacheCounters]:
    url = redis_url()
    if url:
        counters = RedisCounters(
            url,
            timeout=limits_settings.REDIS_TIMEOUT_SECONDS,
            retry_after=limits_settings.REDIS_RETRY_SECONDS,
        )
    elif isinstance(caches["default"], LocMemCache):
        counters = LocalCounters()
    else:
        counters = CacheCounters()
    return limits_settings.KEY_PREFIX, counters


def _current() -> tuple[str, RedisCounters | LocalCounters | CacheCounters]:
    """(key prefix, counters) of the settings, made once per change of them."""
    global _backend
    current = _backend
    if current is None:
        with _lock:
            current = _backend = _backend or _make()
    return current


def _settings_changed(*, setting, **kwargs):
    global _backend
    if setting in ("ROOMKEY_LIMITS", "REDIS_URL", "CACHES"):
        _backend = None


setting_changed.connect(_settings_changed, weak=False)


def backend() -> RedisCounters | LocalCounters | CacheCounters:
    """The counters of the current settings."""
    return _current()[1]


def hit(items: Sequence[tuple[str, float]]) -> list[Count]:
    """Hit or read each (key, window) counter, keys under KEY_PREFIX; raises
    CountersUnavailable."""
    prefix, counters = _current()
    return counters.hit([(prefix + key, window) for key, window in items])


async def hit_async(items: Sequence[tuple[str, float]]) -> list[Count]:
    """`hit` from the event loop."""
    prefix, counters = _current()
    return await counters.hit_async([(prefix + key, window) for key, window in items])


def clear() -> None:
    """Forget every counter (under KEY_PREFIX)."""
    prefix, counters = _current()
    counters.clear(prefix)
