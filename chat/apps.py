from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Addresses, conversations, members and messages; the chat-token endpoint (seed 000), the
    Fabric paths, the messages API and the relay WebSocket."""

    name = "chat"

    def ready(self):
        # Settings reload on setting_changed; requests that reach no view under chat's paths
        # (an unroutable path, a body over the limit) are answered in their contract's format.
        from tokens.errors import register_error_format

        from . import conf  # noqa: F401  (connects the setting_changed reloader)
        from .errors import CHAT_TOKEN_ERRORS, FABRIC_ERRORS

        register_error_format("/api/chat/tokens", CHAT_TOKEN_ERRORS)
        register_error_format("/api/fabric/", FABRIC_ERRORS)
