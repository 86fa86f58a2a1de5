"""A Redis connection on an asyncio event loop that does one thing: run the counters' script
(limits.counters) and read its answer, an array of integers (or an error).

redis-py's asyncio client spends about 110 µs of CPU per command on its stream, parser and
pool layers, three times what the round trip itself costs; this runs on the event loop of
every rate-limited API request, so it speaks RESP directly (the URL read by redis-py's own
parser). Anything it does not expect is an error:
the caller drops the connection and the limits fail open or closed (limits.services).
"""

import asyncio
import ssl

from redis.connection import parse_url


class RedisReplyError(Exception):
    """Redis answered with an error (`-ERR …`, `-NOSCRIPT …`)."""


def _pack(*args) -> bytes:
    """A command as RESP: an array of bulk strings."""
    parts = [value if isinstance(value, bytes) else str(value).encode() for value in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class _Protocol(asyncio.Protocol):
    def __init__(self):
        self.transport = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        try:
            reply, used = _parse(self.buffer)
        except RedisReplyError as exc:
            self.waiter.set_exception(exc)
            return
        if used:
            del self.buffer[:used]
            self.waiter.set_result(reply)

    def connection_lost(self, exc):
        self.lost = exc or ConnectionError("Redis closed the connection")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(self.lost)


def _parse(buffer: bytearray) -> tuple[object, int]:
    """(reply, bytes used) of a complete reply at the start of `buffer`, or (None, 0). A
    reply is +simple, :integer, or an array of integers; -error raises."""
    end = buffer.find(b"\r\n")
    if end < 0:
        return None, 0
    kind, line = buffer[0], bytes(buffer[1:end])
    if kind == 0x2B:  # +
        return line.decode(), end + 2
    if kind == 0x3A:  # :
        return int(line), end + 2
    if kind == 0x2D:  # -
        raise RedisReplyError(line.decode(errors="replace"))
    if kind != 0x2A:  # *
        raise RedisReplyError(f"unexpected reply {bytes(buffer[:20])!r}")
    count = int(line)
    lines = bytes(buffer[end + 2 :]).split(b"\r\n", count)
    if len(lines) <= count:  # the last item is not all here yet
        return None, 0
    items = lines[:count]
    if not all(item[:1] == b":" for item in items):
        raise RedisReplyError("expected an array of integers")
    return [int(item[1:]) for item in items], end + 2 + sum(len(i) + 2 for i in items)


class LoopConnection:
    """One connection to the Redis of `url`, on the running event loop."""

    def __init__(self, protocol: _Protocol):
        self._protocol = protocol

    @classmethod
    async def open(cls, url: str) -> "LoopConnection":
        options = parse_url(url)
        loop = asyncio.get_running_loop()
        if "path" in options:
            _, protocol = await loop.create_unix_connection(_Protocol, options["path"])
        else:
            tls = ssl.create_default_context() if url.startswith("rediss://") else None
            _, protocol = await loop.create_connection(
                _Protocol, options.get("host", "localhost"), options.get("port", 6379), ssl=tls
            )
        connection = cls(protocol)
        try:
            if options.get("password"):
                user = [options["username"]] if options.get("username") else []
                await connection.call("AUTH", *user, options["password"])
            if options.get("db"):
                await connection.call("SELECT", options["db"])
        except BaseException:
            connection.close()
            raise
        return connection

    async def call(self, *args):
        protocol = self._protocol
        if protocol.lost is not None:
            raise protocol.lost
        protocol.waiter = asyncio.get_running_loop().create_future()
        protocol.transport.write(_pack(*args))
        try:
            return await protocol.waiter
        finally:
            protocol.waiter = None

    def close(self) -> None:
        if self._protocol.transport is not None:
            self._protocol.transport.abort()
