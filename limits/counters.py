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

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings

from .conf import limits_settings

log = logging.getLogger(__name__)


class CountersUnavailable(Exception):
    """The counters cannot be reached (Redis down, slow or refusing)."""


@dataclass(frozen=True)
class Count:
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
    def __init__(self, url: str, *, timeout: float, retry_after: float):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._redis = redis
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._script = self._client.register_script(_HIT_SCRIPT)
        self._retry_after = retry_after
        self._down_until = 0.0

    def hit(self, items: Sequence[tuple[str, float]]) -> list[Count]:
        """`items`: (key, window seconds to count a hit in, or 0 to read only)."""
        if time.monotonic() < self._down_until:
            raise CountersUnavailable("Redis was unreachable a moment ago")
        keys = [key for key, _ in items]
        windows = [int(window * 1000) for _, window in items]
        try:
            flat = self._script(keys=keys, args=windows)
        except self._redis.RedisError as exc:
            self._down_until = time.monotonic() + self._retry_after
            log.warning("rate-limit counters unavailable: %s", exc)
            raise CountersUnavailable(str(exc)) from exc
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

    def clear(self, prefix: str) -> None:
        from django.core.cache import cache

        cache.clear()


_lock = threading.Lock()
_backend: tuple[tuple, RedisCounters | CacheCounters] | None = None


def redis_url() -> str:
    configured = limits_settings.REDIS_URL
    return configured if configured is not None else getattr(settings, "REDIS_URL", "")


def backend() -> RedisCounters | CacheCounters:
    """The counters of the current settings (made again when they change)."""
    global _backend
    config = (
        redis_url(),
        limits_settings.REDIS_TIMEOUT_SECONDS,
        limits_settings.REDIS_RETRY_SECONDS,
    )
    current = _backend
    if current is not None and current[0] == config:
        return current[1]
    with _lock:
        if _backend is None or _backend[0] != config:
            url, timeout, retry_after = config
            counters = (
                RedisCounters(url, timeout=timeout, retry_after=retry_after)
                if url
                else CacheCounters()
            )
            _backend = (config, counters)
        return _backend[1]


def hit(items: Sequence[tuple[str, float]]) -> list[Count]:
    """Hit or read each (key, window) counter, keys under KEY_PREFIX; raises
    CountersUnavailable."""
    prefix = limits_settings.KEY_PREFIX
    return backend().hit([(prefix + key, window) for key, window in items])


def clear() -> None:
    """Forget every counter (under KEY_PREFIX)."""
    backend().clear(limits_settings.KEY_PREFIX)
