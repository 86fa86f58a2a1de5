"""tokens.live: a token-bound socket closes on revocation (through the channel layer, which
is Redis when REDIS_URL is set) and at expiry."""

import time

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from channels.generic.websocket import AsyncWebsocketConsumer

from tests.helpers import mint_chat
from tokens import live, services


class BoundConsumer(live.TokenBoundMixin, AsyncWebsocketConsumer):
    """The smallest consumer that binds the token named in its query string."""

    async def connect(self):
        await self.accept()
        raw = self.scope["query_string"].decode().removeprefix("token=")
        result = await sync_to_async(services.token_verify)(raw)
        if not result.valid:
            await self.close(code=live.CLOSE_INVALID_TOKEN)
            return
        expires_at = float(self.scope.get("expires_at") or result.decoded.expires_at)
        await self.bind_token(jti=result.decoded.jti, kind=result.kind, expires_at=expires_at)
        await self.send(text_data="bound")

    async def receive(self, text_data=None, bytes_data=None):
        reason = await self.token_still_valid()
        await self.send(text_data=reason or "ok")

    async def disconnect(self, code):
        await self.unbind_token()


class Socket(ApplicationCommunicator):
    """A WebSocket client at the ASGI boundary. (channels.testing imports daphne, which
    Roomkey does not use; end-to-end socket tests go through uvicorn instead.)"""

    async def receive_from(self):
        out = await self.receive_output(timeout=1)
        assert out["type"] == "websocket.send", out
        return out["text"]

    async def send_to(self, text_data):
        await self.send_input({"type": "websocket.receive", "text": text_data})

    async def disconnect(self):
        await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(timeout=1)


async def _open(token, **extra):
    scope = {"type": "websocket", "path": "/ws", "query_string": f"token={token}".encode()}
    scope.update(extra)
    comm = Socket(BoundConsumer.as_asgi(), scope)
    await comm.send_input({"type": "websocket.connect"})
    assert (await comm.receive_output(timeout=1))["type"] == "websocket.accept"
    return comm


@pytest.mark.django_db(transaction=True)
async def test_revoking_closes_the_socket(project):
    issued = await sync_to_async(mint_chat)(project)
    comm = await _open(issued.token)
    assert await comm.receive_from() == "bound"
    await comm.send_to(text_data="x")
    assert await comm.receive_from() == "ok"
    assert await sync_to_async(services.token_revoke)(jti=issued.row.jti, reason="test")
    out = await comm.receive_output(timeout=1)
    assert out == {"type": "websocket.close", "code": live.CLOSE_REVOKED, "reason": "revoked"}


@pytest.mark.django_db(transaction=True)
async def test_expiry_closes_the_socket(project):
    issued = await sync_to_async(mint_chat)(project)
    comm = await _open(issued.token, expires_at=time.time() + 0.3)
    assert await comm.receive_from() == "bound"
    out = await comm.receive_output(timeout=2)
    assert out["type"] == "websocket.close"
    assert out["code"] == live.CLOSE_EXPIRED


@pytest.mark.django_db(transaction=True)
async def test_invalid_token_is_refused(project):
    comm = await _open("not-a-token")
    out = await comm.receive_output(timeout=1)
    assert out["code"] == live.CLOSE_INVALID_TOKEN


@pytest.mark.django_db(transaction=True)
async def test_recheck_sees_a_revocation_the_layer_missed(project):
    issued = await sync_to_async(mint_chat)(project)
    comm = await _open(issued.token)
    assert await comm.receive_from() == "bound"
    # Revoke behind the layer's back, as if its message had been dropped.
    await sync_to_async(
        lambda: (
            type(issued.row)
            .objects.filter(pk=issued.row.pk)
            .update(revoked_at=issued.row.issued_at)
        )
    )()
    await comm.send_to(text_data="x")
    assert await comm.receive_from() == "revoked"
    await comm.disconnect()


def test_group_names_fit_channels_rules():
    name = live.token_group("x" * 500 + "é/ü")
    assert len(name) < 100 and name.isascii()
    assert live.resource_group("room", "a") != live.resource_group("room", "b")
