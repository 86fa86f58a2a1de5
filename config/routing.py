"""WebSocket routes. The chat relay and the voice-session socket are added by their issues."""

from django.urls import path

from agents.consumers import VoiceSessionConsumer
from chat.routing import websocket_urlpatterns as chat_websockets

websocket_urlpatterns: list = [
    # Issue 4: the chat relay.
    *chat_websockets,
    # Issue 3: the voice-session socket, on the path Vatel's clients use.
    path("v1/connection", VoiceSessionConsumer.as_asgi(), name="voice-connection"),
]
