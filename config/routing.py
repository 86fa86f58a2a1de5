"""WebSocket routes: the chat relay's (chat.routing) and the voice-session socket."""

from django.urls import path

from agents.consumers import VoiceSessionConsumer
from chat.routing import websocket_urlpatterns as chat_websockets

websocket_urlpatterns: list = [
    *chat_websockets,
    # The voice-session socket, on the path Vatel's clients use.
    path("v1/connection", VoiceSessionConsumer.as_asgi(), name="voice-connection"),
]
