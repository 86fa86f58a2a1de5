"""Settings of the agents app, read at call time (tokens.conf's pattern).

`settings.ROOMKEY_AGENTS` is one dict; `agents_settings.NAME` reads a key with its default.
LiveKit's server URL and credentials are the top-level LIVEKIT_* settings (the names LiveKit's
own tools use), read where they are needed (agents.selectors.livekit_credentials).
"""

from datetime import timedelta

from django.conf import settings
from django.core.signals import setting_changed

DEFAULTS = {
    "VOICE_SESSION_TTL": timedelta(hours=1),
    "LIVEKIT_TOKEN_TTL": timedelta(hours=1),
    # Largest WebSocket frame a voice session accepts (UTF-8 bytes); a bigger one closes
    # the socket with 1009.
    "VOICE_FRAME_MAX_BYTES": 64 * 1024,
    # Longest `text` of a {"type": "message"} frame; a longer one gets an error event.
    "VOICE_MESSAGE_MAX_CHARS": 4000,
}


class AgentsSettings:
    def __init__(self):
        self._cache: dict | None = None

    def _values(self) -> dict:
        if self._cache is None:
            self._cache = {**DEFAULTS, **getattr(settings, "ROOMKEY_AGENTS", {})}
        return self._cache

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values()[name]
        except KeyError:
            raise AttributeError(f"Unknown agents setting {name!r}") from None

    def reload(self):
        self._cache = None


agents_settings = AgentsSettings()


def _reload(*, setting, **kwargs):
    if setting == "ROOMKEY_AGENTS":
        agents_settings.reload()


setting_changed.connect(_reload)
