"""A small JSON-RPC client for the relay over a real WebSocket (the `websockets` package), for
tests that need frames the real SignalWire clients never send."""

import asyncio
import itertools
import json

import websockets

_ids = itertools.count(1)


class Relay:
    def __init__(self, ws):
        self.ws = ws
        self.events: list[dict] = []

    @classmethod
    def open(cls, url, **kwargs):
        return _Opener(url, kwargs)

    async def send_raw(self, data) -> None:
        await self.ws.send(data)

    async def next_frame(self, timeout=2.0) -> dict:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def reply_to(self, rid, timeout=2.0) -> dict:
        """The reply with this id; events that arrive first are kept in `events`."""
        while True:
            frame = await self.next_frame(timeout)
            if frame.get("method") == "signalwire.event":
                self.events.append(frame)
                continue
            if frame.get("id") == rid:
                return frame
            raise AssertionError(f"unexpected frame {frame}")

    async def call(self, method, params=None, timeout=2.0) -> dict:
        rid = str(next(_ids))
        payload = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            payload["params"] = params
        await self.ws.send(json.dumps(payload))
        return await self.reply_to(rid, timeout)

    async def result(self, method, params=None) -> dict:
        reply = await self.call(method, params)
        assert "result" in reply, reply
        return reply["result"]

    async def connect(self, token, major=3) -> dict:
        return await self.call(
            "signalwire.connect",
            {
                "version": {"major": major, "minor": 0, "revision": 0},
                "event_acks": True,
                "agent": "roomkey-tests",
                "authentication": {"jwt_token": token},
            },
        )

    async def event(self, event_type, timeout=2.0) -> dict:
        """The next pushed event of this type (acked, as real clients do)."""
        for i, frame in enumerate(self.events):
            if frame["params"]["event_type"] == event_type:
                del self.events[i]
                return frame["params"]["params"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.next_frame(max(0.01, deadline - loop.time()))
            if frame.get("method") != "signalwire.event":
                raise AssertionError(f"unexpected frame {frame}")
            await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": frame["id"], "result": {}}))
            if frame["params"]["event_type"] == event_type:
                return frame["params"]["params"]
            self.events.append(frame)

    async def no_event(self, wait=0.3) -> None:
        try:
            frame = await self.next_frame(wait)
        except TimeoutError:
            return
        raise AssertionError(f"expected nothing, got {frame}")

    async def closed(self, timeout=2.0) -> int:
        """Wait for the server to close the socket; its close code."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None


class _Opener:
    def __init__(self, url, kwargs):
        self.url, self.kwargs = url, kwargs

    async def __aenter__(self) -> Relay:
        self._cm = websockets.connect(self.url, **self.kwargs)
        return Relay(await self._cm.__aenter__())

    async def __aexit__(self, *exc):
        return await self._cm.__aexit__(*exc)
