"""The relay's token lifecycle at the ASGI boundary (no server process needed): a token that
reaches expiry closes its socket then, and a revocation the channel layer never delivered is
still caught by the re-check on the next frame."""

import json
from datetime import timedelta

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async as db_async

from chat import services as chat_services
from chat.consumers import RelayConsumer
from chat.models import Member
from chat.relay_methods import MEMBERS_MAX
from tests.helpers import RELAY, mint_chat
from tokens import kinds, live, services
from tokens.models import IssuedToken

pytestmark = pytest.mark.django_db(transaction=True)


class Socket(ApplicationCommunicator):
    async def call(self, method, params, rid="1"):
        frame = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        await self.send_input({"type": "websocket.receive", "text": json.dumps(frame)})
        while True:
            out = await self.receive_output(timeout=2)
            if out["type"] != "websocket.send":
                return out
            reply = json.loads(out["text"])
            if reply.get("method") != "signalwire.event":  # events are not replies
                return reply


async def _open(token) -> Socket:
    scope = {"type": "websocket", "path": "/api/relay/ws", "headers": [], "query_string": b""}
    socket = Socket(RelayConsumer.as_asgi(), scope)
    await socket.send_input({"type": "websocket.connect"})
    assert (await socket.receive_output(timeout=1))["type"] == "websocket.accept"
    reply = await socket.call(
        "signalwire.connect", {"version": {"major": 3}, "authentication": {"jwt_token": token}}
    )
    assert "result" in reply, reply
    return socket


def _short_lived_token(project, seconds):
    # The API's shortest TTL is a minute; the service takes any timedelta.
    return services.token_issue(
        project=project,
        kind=kinds.CHAT.name,
        subject="alice",
        ttl=timedelta(seconds=seconds),
        grants={"channels": {"general": {"read": True, "write": True}}, "state": {}},
        headers={"ch": RELAY},
    )


async def test_expiry_closes_the_socket_at_expiry(project):
    # Whole seconds: iat is floored, so two seconds leave at least one to connect in.
    issued = await db_async(_short_lived_token)(project, 2)
    socket = await _open(issued.token)
    out = await socket.receive_output(timeout=4)
    assert out == {"type": "websocket.close", "code": live.CLOSE_EXPIRED, "reason": "expired"}


async def test_a_revocation_the_layer_missed_is_caught_on_the_next_frame(project):
    issued = await db_async(mint_chat)(project)
    socket = await _open(issued.token)
    ok = await socket.call("chat.subscribe", {"channels": [{"name": "general"}]})
    assert ok["result"]["code"] == "200"
    # Revoked behind the channel layer's back, as if its message had been dropped.
    await db_async(
        lambda: IssuedToken.objects.filter(pk=issued.row.pk).update(revoked_at=issued.row.issued_at)
    )()
    out = await socket.call("chat.publish", {"channel": "general", "content": "too late"})
    assert out["type"] == "websocket.close" and out["code"] == live.CLOSE_REVOKED


async def test_the_subscription_leaves_with_the_socket(project):
    from chat import selectors

    issued = await db_async(mint_chat)(project, member_id="alice")
    socket = await _open(issued.token)
    await socket.call("chat.subscribe", {"channels": [{"name": "general"}]})
    await socket.send_input({"type": "websocket.disconnect", "code": 1000})
    await socket.wait(timeout=2)

    def present():
        conversation = selectors.conversation_by_name(project=project, name="general")
        return list(selectors.members_present(conversation=conversation))

    assert await db_async(present)() == []


async def test_an_idle_socket_is_rechecked_too(project, settings):
    settings.ROOMKEY_CHAT = {**settings.ROOMKEY_CHAT, "RECHECK_SECONDS": 0.2}
    issued = await db_async(mint_chat)(project)
    socket = await _open(issued.token)
    # Revoked behind the layer's back, and the client sends nothing at all.
    await db_async(
        lambda: IssuedToken.objects.filter(pk=issued.row.pk).update(revoked_at=issued.row.issued_at)
    )()
    out = await socket.receive_output(timeout=2)
    assert out == {"type": "websocket.close", "code": live.CLOSE_REVOKED, "reason": "revoked"}


async def test_members_get_lists_at_most_members_max(project):
    """`chat.members.get` lists MEMBERS_MAX present members, oldest join first, never more."""

    def crowd(count):
        conversation = chat_services.conversation_for_name(project=project, name="general")
        Member.objects.filter(conversation=conversation).delete()
        Member.objects.bulk_create(
            Member(conversation=conversation, member_id=f"m{i:05d}") for i in range(count)
        )

    issued = await db_async(mint_chat)(project)
    socket = await _open(issued.token)
    for count, listed in ((MEMBERS_MAX, MEMBERS_MAX), (MEMBERS_MAX + 1, MEMBERS_MAX)):
        await db_async(crowd)(count)
        reply = await socket.call("chat.members.get", {"channel": "general"})
        members = reply["result"]["members"]
        assert len(members) == listed
        assert members[0]["id"] == "m00000"
    await socket.send_input({"type": "websocket.disconnect", "code": 1000})
