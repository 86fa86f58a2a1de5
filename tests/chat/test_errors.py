"""Every error of chat's families in its own format, JSON and never an HTML page, in DEBUG or
not: the chat-token endpoint and the Fabric paths (SignalWire's format, chat.errors), the
chat API (DRF's), and the relay (JSON-RPC). 404 for an unroutable path and an unknown id,
405 for a wrong method, 500 for a bug (simulated by making one of chat's own functions
raise)."""

import json
import uuid

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async as db_async
from rest_framework.test import APIClient

from chat import selectors, services
from chat.consumers import RelayConsumer
from chat.errors import (
    AUTH_FAILED,
    INTERNAL_ERROR,
    ChatAuthError,
    InvalidCursor,
    NotGranted,
    relay_answer,
)
from tests.helpers import mint_chat
from tokens import live
from tokens.asgi import RequestBodyLimit
from tokens.errors import BadInput, BadRequest, Unauthorized

ERROR_KEYS = {"type", "code", "message", "attribute", "url"}
RW = {"read": True, "write": True}


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def json_of(response, status) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def signalwire_error(response, status, *, docs) -> dict:
    """The one item of a SignalWire `{"errors": [...]}` answer."""
    body = json_of(response, status)
    assert set(body) == {"errors"}
    [error] = body["errors"]
    assert set(error) == ERROR_KEYS
    assert error["url"] == f"http://testserver/#{docs}"
    return error


def boom(*args, **kwargs):
    raise RuntimeError("a bug")


# --- POST /api/chat/tokens (seed 000) -----------------------------------------------------


def test_chat_tokens_unroutable_path_is_404(api, debug):
    error = signalwire_error(api.post("/api/chat/tokens/x", {}), 404, docs="errors")
    assert error["code"] == "not_found" and error["type"] == "invalid_request_error"


def test_chat_tokens_wrong_method_is_405(api, debug):
    error = signalwire_error(api.get("/api/chat/tokens"), 405, docs="errors")
    assert error["code"] == "method_not_allowed"


def test_chat_tokens_unacceptable_accept_header_is_422(api):
    response = api.post(
        "/api/chat/tokens", {"ttl": 5, "channels": ["a"]}, format="json", HTTP_ACCEPT="text/xml"
    )
    assert signalwire_error(response, 422, docs="errors")["code"] == "not_acceptable"


def test_chat_tokens_bug_is_500(api, debug, monkeypatch):
    monkeypatch.setattr(services, "chat_token_issue", boom)
    response = api.post("/api/chat/tokens", {"ttl": 5, "channels": ["a"]}, format="json")
    error = signalwire_error(response, 500, docs="errors")
    assert error["message"] == "Internal server error." and error["type"] == "server_error"
    assert "a bug" not in response.content.decode()


# --- Fabric -------------------------------------------------------------------------------


@pytest.fixture
def fabric(project):
    services.address_get_or_create(project=project, name="general")
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {mint_chat(project, channels={'general': RW}).token}"
    )
    return client


@pytest.mark.parametrize("authenticated", [True, False])
def test_fabric_unroutable_path_is_404(fabric, debug, authenticated):
    client = fabric if authenticated else APIClient()
    error = signalwire_error(client.get("/api/fabric/no/such/path"), 404, docs="chat")
    assert error["code"] == "not_found"


@pytest.mark.parametrize(
    "path", ["/api/fabric/addresses/{id}", "/api/fabric/conversations/{id}/messages"]
)
def test_fabric_unknown_id_is_404(fabric, debug, path):
    response = fabric.get(path.format(id=uuid.uuid4()))
    assert signalwire_error(response, 404, docs="chat")["message"] == "No such address."


def test_fabric_wrong_method_is_405(fabric, debug):
    error = signalwire_error(fabric.delete("/api/fabric/addresses"), 405, docs="chat")
    assert error["code"] == "method_not_allowed"


def test_fabric_unacceptable_accept_header_is_406(fabric):
    response = fabric.get("/api/fabric/addresses", HTTP_ACCEPT="text/xml")
    assert signalwire_error(response, 406, docs="chat")["code"] == "not_acceptable"


def test_fabric_bug_is_500(fabric, project, debug, monkeypatch):
    monkeypatch.setattr(selectors, "address_for", boom)
    address = services.address_get_or_create(project=project, name="general")
    response = fabric.get(f"/api/fabric/addresses/{address.pk}")
    error = signalwire_error(response, 500, docs="chat")
    assert error["message"] == "Internal server error."


# --- Bodies refused before Django reads them ----------------------------------------------


@pytest.mark.parametrize(
    ("path", "docs"),
    [
        ("/api/chat/tokens", "errors"),
        ("/api/fabric/messages", "chat"),
        ("/api/fabric/conversations/join", "chat"),
    ],
)
async def test_oversize_body_is_answered_in_the_paths_format(settings, path, docs):
    settings.ROOMKEY = {**settings.ROOMKEY, "MAX_BODY_BYTES": 10}
    sent = []

    async def django(scope, receive, send):
        raise AssertionError("the body reached Django")

    async def send(message):
        sent.append(message)

    headers = [(b"host", b"testserver"), (b"content-length", b"11")]
    scope = {"type": "http", "path": path, "scheme": "http", "headers": headers}
    await RequestBodyLimit(django)(scope, None, send)
    assert sent[0]["status"] == 422
    assert json.loads(sent[1]["body"]) == {
        "errors": [
            {
                "type": "invalid_request_error",
                "code": "body_too_large",
                "message": "Request body is larger than 10 bytes.",
                "attribute": None,
                "url": f"http://testserver/#{docs}",
            }
        ]
    }


# --- The chat API (/api/v1/…, DRF's conventions) ------------------------------------------


@pytest.fixture
def conversation(project):
    return services.conversation_for_name(project=project, name="general")


def test_api_unroutable_path_is_404(api, conversation, debug):
    response = api.get(f"/api/v1/conversations/{conversation.pk}/no-such-action")
    assert json_of(response, 404) == {"detail": "Not found."}


@pytest.mark.parametrize(
    "path", ["/api/v1/conversations/{id}", "/api/v1/conversations/{id}/messages"]
)
def test_api_unknown_id_is_404(api, debug, path):
    assert json_of(api.get(path.format(id=uuid.uuid4())), 404) == {"detail": "Not found."}


def test_api_wrong_method_is_405(api, conversation, debug):
    response = api.put(f"/api/v1/conversations/{conversation.pk}", {}, format="json")
    assert json_of(response, 405) == {"detail": 'Method "PUT" not allowed.'}


def test_api_bug_is_500(api, debug, monkeypatch):
    monkeypatch.setattr(selectors, "conversations_for", boom)
    assert json_of(api.get("/api/v1/conversations"), 500) == {"detail": "Internal server error."}


# --- The relay (JSON-RPC) -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_relay_bug_is_internal_error_and_the_socket_stays_open(project, monkeypatch):
    issued = await db_async(mint_chat)(project)
    scope = {"type": "websocket", "path": "/api/relay/ws", "headers": [], "query_string": b""}
    socket = ApplicationCommunicator(RelayConsumer.as_asgi(), scope)
    await socket.send_input({"type": "websocket.connect"})
    assert (await socket.receive_output(timeout=1))["type"] == "websocket.accept"

    async def call(method, params):
        frame = {"jsonrpc": "2.0", "id": "1", "method": method, "params": params}
        await socket.send_input({"type": "websocket.receive", "text": json.dumps(frame)})
        return json.loads((await socket.receive_output(timeout=2))["text"])

    auth = {"version": {"major": 3}, "authentication": {"jwt_token": issued.token}}
    assert "result" in await call("signalwire.connect", auth)
    monkeypatch.setattr(services, "message_send", boom)
    reply = await call("chat.publish", {"channel": "general", "content": "hi"})
    assert reply == {
        "jsonrpc": "2.0",
        "id": "1",
        "error": {"code": INTERNAL_ERROR, "message": "Internal error."},
    }
    assert "result" in await call("signalwire.ping", {})
    await socket.send_input({"type": "websocket.disconnect", "code": 1000})
    await socket.wait(timeout=2)


@pytest.mark.parametrize(
    ("error", "frame", "close"),
    [
        (
            BadInput("Must be a string.", field="text"),
            {"result": {"code": "400", "message": "Must be a string.", "attribute": "text"}},
            None,
        ),
        (InvalidCursor(), {"result": {"code": "400", "message": "Cursor is not valid."}}, None),
        (NotGranted("No."), {"result": {"code": "403", "message": "No."}}, None),
        (BadRequest("Bad."), {"error": {"code": -32600, "message": "Bad."}}, None),
        (
            BadRequest("Params.", code="invalid_params"),
            {"error": {"code": -32602, "message": "Params."}},
            None,
        ),
        (
            ChatAuthError("expired"),
            {"error": {"code": AUTH_FAILED, "message": "Authentication failed."}},
            (live.CLOSE_INVALID_TOKEN, "invalid token"),
        ),
        (
            Unauthorized("Authentication failed: expired.", code=ChatAuthError.code),
            {"error": {"code": AUTH_FAILED, "message": "Authentication failed: expired."}},
            None,
        ),
    ],
)
def test_relay_answer(error, frame, close):
    assert relay_answer(7, error) == ({"jsonrpc": "2.0", "id": 7, **frame}, close)
