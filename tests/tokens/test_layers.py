"""The channel layer as configured (config/settings.py, tokens/layers.py): groups outlive every
token a socket can hold, and with Redis every call is bounded and a fault fails fast.

The Redis tests put tests/faultproxy.py between the layer and the real Redis (REDIS_URL), so
they run in the PostgreSQL + Redis pass of .ci/run.
"""

import asyncio
import json
import os
import subprocess
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async as db_async
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured

from agents.conf import agents_settings
from chat import events
from chat.consumers import RelayConsumer
from chat.serializers import TTL_MAX
from tests.faultproxy import FaultProxy
from tests.helpers import RW, mint_chat
from tests.servers import MANAGE, ROOT
from tokens import live
from tokens.layers import ChannelLayerUnavailable, RedisChannelLayer

REDIS_URL = os.environ.get("REDIS_URL", "")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (a real Redis)")


# --- Group expiry ---------------------------------------------------------------------------


def test_groups_outlive_every_token_a_socket_can_hold():
    # A relay socket lives up to a chat token's largest ttl, a voice socket up to the voice
    # session's; a group that expired sooner would silently stop reaching them.
    expiry = timedelta(seconds=get_channel_layer().group_expiry)
    assert expiry >= timedelta(minutes=TTL_MAX)
    assert expiry >= agents_settings.VOICE_SESSION_TTL


@pytest.mark.parametrize("redis_url", ["", "redis://127.0.0.1:6379/0"])
def test_group_expiry_follows_the_configured_token_lifetimes(redis_url):
    # Not a number of its own: a longer voice-session lifetime lengthens it.
    code = (
        "import json; from django.conf import settings as s; c = s.CHANNEL_LAYERS['default'];"
        "print(json.dumps([c['BACKEND'], c['CONFIG']]))"
    )
    ninety_days = 90 * 86400
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "ROOMKEY_VOICE_SESSION_TTL_SECONDS": str(ninety_days),
    }
    done = subprocess.run(
        [*MANAGE, "shell", "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    backend, config = json.loads(done.stdout.strip().splitlines()[-1])
    assert config["group_expiry"] > ninety_days
    if redis_url:
        # Every Redis call is bounded, and so is the blocking read (half the socket timeout).
        assert backend == "tokens.layers.RedisChannelLayer"
        for host in config["hosts"]:
            assert 0 < host["socket_timeout"] <= 1 and 0 < host["socket_connect_timeout"] <= 1


@pytest.mark.django_db(transaction=True)
async def test_moving_to_a_fresh_token_renews_the_sockets_group_memberships(project):
    # A relay socket can outlive any one token by reauthenticating; its memberships are renewed
    # then, so a group expiry beyond the longest token is enough.
    first = await db_async(mint_chat)(project, member_id="alice", channels={"lobby": RW})
    second = await db_async(mint_chat)(project, member_id="alice", channels={"lobby": RW})
    socket = ApplicationCommunicator(
        RelayConsumer.as_asgi(),
        {"type": "websocket", "path": "/api/relay/ws", "headers": [], "query_string": b""},
    )
    await socket.send_input({"type": "websocket.connect"})
    assert (await socket.receive_output(timeout=1))["type"] == "websocket.accept"

    async def call(method, token):
        params = {"authentication": {"jwt_token": token}}
        if method == "signalwire.connect":
            params["version"] = {"major": 4}
        frame = {"jsonrpc": "2.0", "id": method, "method": method, "params": params}
        await socket.send_input({"type": "websocket.receive", "text": json.dumps(frame)})
        reply = json.loads((await socket.receive_output(timeout=2))["text"])
        assert "result" in reply, reply

    group = events.channel_group(project.pk, "lobby")
    await call("signalwire.connect", first.token)
    joined = await _joined_at(group)
    await asyncio.sleep(1.1)
    await call("signalwire.reauthenticate", second.token)
    assert await _joined_at(group) > joined
    assert await _joined_at(live.token_group(second.row.jti)) > joined
    await socket.send_input({"type": "websocket.disconnect", "code": 1000})
    await socket.wait(timeout=2)


async def _joined_at(group) -> float:
    """When the one socket in `group` joined it (last renewed it), per the layer."""
    layer = get_channel_layer()
    if isinstance(layer, RedisChannelLayer):
        members = await layer.connection(0).zrange(layer._group_key(group), 0, -1, withscores=True)
        return max(score for _, score in members)
    return max(layer.groups[group].values())


# --- Bounded Redis calls --------------------------------------------------------------------


def test_a_redis_host_without_a_socket_timeout_is_refused():
    with pytest.raises(ImproperlyConfigured):
        RedisChannelLayer(hosts=[{"address": "redis://127.0.0.1:6379/0"}])
    layer = RedisChannelLayer(hosts=[{"address": "redis://127.0.0.1:6379/0", "socket_timeout": 1}])
    assert layer.brpop_timeout < 1


@pytest.fixture
def proxied_layer():
    """A layer as settings configure it, talking to the real Redis through a FaultProxy."""
    target = urlsplit(REDIS_URL)
    with FaultProxy(target.hostname, target.port or 6379) as proxy:
        address = target._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
        layer = RedisChannelLayer(
            hosts=[{"address": address, "socket_timeout": 1.0, "socket_connect_timeout": 1.0}],
            prefix=f"layer-test-{os.getpid()}-{time.monotonic_ns()}",
        )
        yield layer, proxy


@needs_redis
async def test_an_idle_read_outlives_the_socket_timeout(proxied_layer):
    # The blocking read returns (empty) before the socket timeout, again and again: waiting
    # longer than the timeout for a message is not a fault.
    layer, _ = proxied_layer
    channel = await layer.new_channel()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), timeout=2.5)
    await layer.send(channel, {"type": "hello"})
    assert await asyncio.wait_for(layer.receive(channel), 1) == {"type": "hello"}


@needs_redis
@pytest.mark.parametrize("fault", ["refuse", "cut", "blackhole"])
async def test_a_redis_fault_fails_every_receiver_and_call_fast(proxied_layer, fault):
    layer, proxy = proxied_layer
    channels = [await layer.new_channel() for _ in range(20)]
    await layer.group_add("rk.test", channels[0])
    receivers = [asyncio.ensure_future(layer.receive(c)) for c in channels]
    await asyncio.sleep(0.3)  # reading
    started = time.monotonic()
    getattr(proxy, fault)()
    done, pending = await asyncio.wait(receivers, timeout=2.0)
    # Every receiver of the process hears it, at once: not one socket timeout each.
    assert not pending, f"{len(pending)} receivers still waiting after {fault}"
    assert all(isinstance(t.exception(), ChannelLayerUnavailable) for t in done)
    assert time.monotonic() - started < 1.5
    if fault != "cut":  # a cut is over at once; the others last until healed
        for call in (
            layer.group_add("rk.test", channels[1]),
            layer.group_send("rk.test", {"type": "x"}),
            layer.send(channels[0], {"type": "x"}),
        ):
            started = time.monotonic()
            with pytest.raises(ChannelLayerUnavailable):
                await call
            assert time.monotonic() - started < 1.5
    proxy.heal()
    await layer.group_send("rk.test", {"type": "back"})
    assert await asyncio.wait_for(layer.receive(channels[0]), 1) == {"type": "back"}
