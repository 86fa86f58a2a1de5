"""A TCP proxy for fault tests: Roomkey talks to the real PostgreSQL or Redis through it, and a
test makes the link fail the ways networks fail.

    with FaultProxy("127.0.0.1", 5432) as proxy:      # listens on 127.0.0.1:<proxy.port>
        ... point DATABASE_URL / REDIS_URL at proxy.port ...
        proxy.refuse()      # new connections are refused (connection refused at once)
        proxy.cut()         # every open connection is reset now; new ones are accepted
        proxy.blackhole()   # connections (open and new) stay up but no byte passes either way
        proxy.heal()        # back to forwarding; new connections work again

Nothing is mocked: bytes go to the real service. The proxy runs its own event loop in a
thread, so it serves subprocesses (uvicorn servers) and the test process alike.
"""

import asyncio
import contextlib
import socket
import struct
import threading

FORWARD, REFUSE, BLACKHOLE = "forward", "refuse", "blackhole"


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.port: int | None = None
        self.mode = FORWARD
        self.accepted = 0  # connections accepted so far (to assert traffic went through)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    # --- Life ---------------------------------------------------------------------------

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        with socket.socket() as probe:
            probe.bind((self.listen_host, 0))
            self.port = probe.getsockname()[1]
        self._call(self._listen())
        return self

    def __exit__(self, *exc) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def url(self, scheme_and_rest: str) -> str:
        """`scheme_and_rest` with {port} filled, e.g. "postgres://postgres@127.0.0.1:{port}/t"."""
        return scheme_and_rest.format(port=self.port)

    # --- Faults -------------------------------------------------------------------------

    def refuse(self) -> None:
        """Close the listening socket (new connections are refused) and reset open ones."""
        self.mode = REFUSE
        self._call(self._stop_listening())
        self._call(self._reset_all())

    def cut(self) -> None:
        """Reset every open connection; new ones are still accepted and forwarded."""
        self._call(self._reset_all())

    def blackhole(self) -> None:
        """Keep every connection open but pass nothing, like packets dropped on the way."""
        self.mode = BLACKHOLE

    def heal(self) -> None:
        """Forward again (listening again after `refuse`)."""
        previous, self.mode = self.mode, FORWARD
        if previous == REFUSE:
            self._call(self._listen())

    # --- Inside the proxy's loop ----------------------------------------------------------

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.listen_host, self.port, reuse_address=True
        )

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _reset_all(self) -> None:
        for client, upstream in list(self._links):
            for writer in (client, upstream):
                _reset(writer)
        self._links.clear()

    async def _shutdown(self) -> None:
        await self._stop_listening()
        await self._reset_all()

    async def _accept(self, reader, writer) -> None:
        if self.mode == REFUSE:
            _reset(writer)
            return
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer)
            return
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._links.discard(link)
            for w in link:
                with contextlib.suppress(Exception):
                    w.close()

    async def _pipe(self, reader, writer) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                while self.mode == BLACKHOLE:
                    await asyncio.sleep(0.05)  # hold the bytes: nothing passes
                if self.mode == REFUSE:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


def _reset(writer) -> None:
    """Close with RST (SO_LINGER 0), as a crashed peer or a dropped link looks."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(Exception):
        writer.close()
