"""A socket whose consumer raises gives back everything it held (tokens.live.TokenBoundMixin):
no presence, no timer tasks, no channel-layer group memberships, no consumer left in memory.

The trigger is a real one: a client that sends a request and drops its connection before the
answer. uvicorn then raises from the consumer's send, so the handler raises, and Channels never
calls disconnect() (no `websocket.disconnect` is dispatched after an exception). The server is
uvicorn on the project's ASGI app, run in this process (in a thread, with its own event loop)
so the test can look at the server's tasks, channel layer and memory; the database is the test
database, the channel layer the configured one (Redis when REDIS_URL is set).
"""

import asyncio
import gc
import json
import threading
import time
import weakref

import pytest
import uvicorn
import websockets
from channels.db import database_sync_to_async as db_async
from channels.layers import get_channel_layer

from agents.consumers import VoiceSessionConsumer
from agents.models import VoiceSession
from agents.services import session_token_issue
from chat import events
from chat.consumers import RelayConsumer
from chat.models import Member
from tests.agents.conftest import make_agent
from tests.helpers import RW, mint_chat
from tests.servers import free_port
from tokens import live

pytestmark = pytest.mark.django_db(transaction=True)

CHANNELS = 100  # enough that subscribing takes a while, so the client can leave half-way


class InProcessServer:
    def __init__(self):
        self.port = free_port()
        config = uvicorn.Config(
            "config.asgi:application",
            host="127.0.0.1",
            port=self.port,
            ws="websockets-sansio",
            lifespan="off",
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self.server.serve(),), daemon=True
        )

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def run(self, coro_fn, *args, timeout=5.0):
        """Run `coro_fn(*args)` on the server's loop (the loop the sockets live on)."""
        future = asyncio.run_coroutine_threadsafe(coro_fn(*args), self.loop)
        return future.result(timeout=timeout)

    def timer_tasks(self) -> list[str]:
        async def names():
            return [
                t.get_name()
                for t in asyncio.all_tasks()
                if t.get_name().startswith(live.TIMER_TASK_PREFIX) and not t.done()
            ]

        return self.run(names)

    def group_members(self, groups: list[str]) -> dict:
        """The channel names in each group, read from the layer the server uses."""

        async def read():
            layer = get_channel_layer()
            if hasattr(layer, "connection"):  # Redis
                connection = layer.connection(0)
                keys = {g: layer._group_key(g) for g in groups}
                return {g: await connection.zrange(k, 0, -1) for g, k in keys.items()}
            return {g: list(layer.groups.get(g, {})) for g in groups}

        return self.run(read)


@pytest.fixture
def server():
    with InProcessServer() as served:
        yield served


def consumer_of(consumer_class, jti: str):
    """A weak reference to the live consumer bound to token `jti`, or None."""
    for obj in gc.get_objects():
        if type(obj) is consumer_class and obj.bound_jti == jti:
            return weakref.ref(obj)
    return None


def gone(ref) -> bool:
    gc.collect()
    return ref() is None


async def eventually(check, *, within=5.0):
    """Poll `check()` (run in a thread) until it is true; its last value."""
    deadline = time.monotonic() + within
    while True:
        value = await asyncio.to_thread(check)
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


# The database is read only once the server is done with the socket: on SQLite the test
# database is shared in memory, where a reader and a writer in two threads lock each other out.


def _present(project, names) -> int:
    return Member.objects.filter(
        conversation__project=project, conversation__address__name__in=names, left_at__isnull=True
    ).count()


async def test_a_relay_socket_that_raises_leaves_no_presence_timers_or_groups(
    server, project, caplog
):
    names = [f"crash-{i:03d}" for i in range(CHANNELS)]
    issued = await db_async(mint_chat)(
        project, member_id="crasher", channels={n: RW for n in names}
    )
    token_group = live.token_group(issued.row.jti)
    channel_groups = [events.channel_group(project.pk, n) for n in names]
    ws = await websockets.connect(server.url("/api/relay/ws"))
    connect = {"version": {"major": 3}, "authentication": {"jwt_token": issued.token}}
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": "1", "method": "signalwire.connect",
                              "params": connect}))  # fmt: skip
    assert "result" in json.loads(await ws.recv())
    consumer = consumer_of(RelayConsumer, issued.row.jti)
    assert consumer is not None and server.timer_tasks(), "re-checked on a timer"
    subscribe = {"channels": [{"name": n} for n in names]}
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": "2", "method": "chat.subscribe",
                              "params": subscribe}))  # fmt: skip
    # The groups are joined first, then each channel's member row is written: leave while the
    # rows are being written, so the answer cannot be sent.
    assert await eventually(lambda: all(server.group_members(channel_groups[-1:]).values()))
    ws.transport.abort()

    # Groups are left last, once the presence is given back.
    groups = [token_group, *channel_groups]
    assert await eventually(lambda: not any(server.group_members(groups).values()), within=10)
    assert "went away" in caplog.text, "the answer was sent: the client left too late"
    assert await eventually(lambda: gone(consumer)), "the consumer is still alive"
    assert not server.timer_tasks()
    assert await db_async(_present)(project, names) == 0, "members still present"


async def test_a_voice_socket_that_raises_ends_its_session_and_releases_it(server, project, caplog):
    agent, _ = await db_async(make_agent)(project)
    issued = await db_async(session_token_issue)(project=project, agent_id=agent.pk)
    session = issued.session
    groups = [live.token_group(session.jti), live.resource_group("voicesession", session.pk)]
    ws = await websockets.connect(server.url(f"/v1/connection?token={issued.token}"))
    assert json.loads(await ws.recv())["type"] == "session.started"
    consumer = consumer_of(VoiceSessionConsumer, session.jti)
    assert consumer is not None and server.timer_tasks(), "closed at expiry by a timer"
    # Messages to store, and gone before the answers.
    for i in range(20):
        await ws.send(json.dumps({"type": "message", "text": f"hello {i}, and goodbye"}))
    ws.transport.abort()

    assert await eventually(lambda: not any(server.group_members(groups).values()))
    assert "went away" in caplog.text, "the answer was sent: the client left too late"
    assert await eventually(lambda: gone(consumer)), "the consumer is still alive"
    assert not server.timer_tasks()
    session = await db_async(VoiceSession.objects.get)(pk=session.pk)
    assert session.status == VoiceSession.ENDED, session.status
    assert session.end_reason == "connection lost (1011)"
