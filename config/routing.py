"""WebSocket routes. The chat relay and the voice-session socket are added by their issues."""

from chat.routing import websocket_urlpatterns as chat_websockets

websocket_urlpatterns: list = [
    *chat_websockets,
]
