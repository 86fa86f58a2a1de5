"""A small per-process cache with a time to live, for what the hot paths read on every request
(signing keys, tool-token state). Each entry lives `ttl()` seconds; a full cache is cleared
rather than grown, so garbage input (unknown kids, forged tokens) cannot fill memory.

Writes that change what is cached drop the entries in this process (`forget`, `clear`); other
processes see the change when their entries expire, which bounds how long a revocation made
elsewhere takes to be seen.
"""

import threading
import time
from collections.abc import Callable, Hashable


class TTLCache:
    def __init__(self, ttl: Callable[[], float], *, max_entries: int = 4096):
        self._ttl = ttl  # read at call time: settings change in tests
        self._max = max_entries
        self._entries: dict = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> tuple[bool, object]:
        """(True, value) for a live entry (the value may be None: a cached miss), else
        (False, None)."""
        hit = self._entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl():
            return True, hit[1]
        return False, None

    def put(self, key: Hashable, value) -> None:
        if self._ttl() <= 0:
            return
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = (time.monotonic(), value)

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def forget_where(self, predicate: Callable[[Hashable], bool]) -> None:
        with self._lock:
            for key in [key for key in self._entries if predicate(key)]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
