"""WebSocket routes. The chat relay and the voice-session socket are added by their issues."""

from django.urls import path

from agents.consumers import VoiceSessionConsumer

websocket_urlpatterns: list = [
    # Issue 3: the voice-session socket, on the path Vatel's clients use.
    path("v1/connection", VoiceSessionConsumer.as_asgi(), name="voice-connection"),
]
