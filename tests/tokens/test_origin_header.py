"""The WebSocket Origin policy against malformed Origin headers, over a served Roomkey: refused
with 403 like any Origin not allowed, never a 500 from the header's parsing."""

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect


@pytest.mark.parametrize("path", ["/api/relay/ws", "/v1/connection"])
@pytest.mark.parametrize(
    "origin", ["http://[::1", "http://127.0.0.1:99999", "http://[127.0.0.1]", "http://a:-1"]
)
def test_a_malformed_origin_is_refused_with_403(chat_server, path, origin):
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{chat_server.port}{path}", origin=origin).__enter__()
    assert refused.value.response.status_code == 403


def test_an_allowed_origin_still_connects(chat_server):
    url = f"ws://127.0.0.1:{chat_server.port}/api/relay/ws"
    with connect(url, origin="http://127.0.0.1:1234") as ws:
        ws.send('{"jsonrpc": "2.0", "id": "1", "method": "signalwire.ping"}')
        assert '"result"' in ws.recv(timeout=5)
