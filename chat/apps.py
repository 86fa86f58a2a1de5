from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Addresses, conversations, members, messages and the relay WebSocket (issue 4)."""

    name = "chat"
