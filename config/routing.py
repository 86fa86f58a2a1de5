"""WebSocket routes. The chat relay and the voice-session socket are added by their issues."""

websocket_urlpatterns: list = []
