from django.apps import AppConfig


class TokensConfig(AppConfig):
    """Tenancy and credentials: projects, API keys, signing keys and the issued-token registry."""

    name = "tokens"

    def ready(self):
        from django.urls import register_converter

        from . import conf  # noqa: F401  (connects the setting_changed reloader)
        from .converters import TextConverter
        from .live import connect_signals

        connect_signals()
        register_converter(TextConverter, "text")
