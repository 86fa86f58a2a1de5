from django.urls import path

from .consumers import RelayConsumer

# The relay's path; chat tokens name its URL in their `ch` header (chat.views.relay_url).
RELAY_PATH = "api/relay/ws"

websocket_urlpatterns = [
    path(RELAY_PATH, RelayConsumer.as_asgi(), name="chat-relay"),
]
