from django.urls import path

from .consumers import RelayConsumer

websocket_urlpatterns = [
    path("api/relay/ws", RelayConsumer.as_asgi(), name="chat-relay"),
]
