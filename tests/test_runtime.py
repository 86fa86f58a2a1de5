"""The embedded defaults and the real parts: in-memory cache and channel layer without
REDIS_URL, Redis with it; SQLite without DATABASE_URL, PostgreSQL with it."""

import os
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.core.cache import cache
from django.db import connection


def test_database_is_the_configured_one(db):
    expected = (
        "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    )
    assert connection.vendor == expected


def test_cache_round_trip_on_the_configured_backend():
    backend = settings.CACHES["default"]["BACKEND"]
    if os.environ.get("REDIS_URL"):
        assert backend.endswith("RedisCache")
    else:
        assert backend.endswith("LocMemCache")
    key = f"runtime-{uuid.uuid4()}"
    cache.set(key, {"n": 1}, timeout=30)
    assert cache.get(key) == {"n": 1}
    cache.delete(key)


@pytest.mark.timeout(30)
def test_channel_layer_group_round_trip():
    layer = get_channel_layer()
    if os.environ.get("REDIS_URL"):
        # channels_redis's layer (tokens.layers bounds its calls).
        assert isinstance(layer, RedisChannelLayer)
    group = f"runtime-{uuid.uuid4().hex}"

    async def round_trip():
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        await layer.group_send(group, {"type": "ping", "n": 7})
        message = await layer.receive(channel)
        await layer.group_discard(group, channel)
        return message

    assert async_to_sync(round_trip)() == {"type": "ping", "n": 7}


def test_every_model_change_has_its_migration(db):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
