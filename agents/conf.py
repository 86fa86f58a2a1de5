"""Settings of the agents app, read at call time (tokens.conf's pattern).

`settings.ROOMKEY_AGENTS` is one dict; `agents_settings.NAME` reads a key with its default.
LiveKit's server URL and credentials are the top-level LIVEKIT_* settings (the names LiveKit's
own tools use), read where they are needed (agents.selectors.livekit_credentials).
"""

from datetime import timedelta

from tokens.conf import AppSettings

DEFAULTS = {
    "VOICE_SESSION_TTL": timedelta(hours=1),
    "LIVEKIT_TOKEN_TTL": timedelta(hours=1),
    # Largest WebSocket frame a voice session accepts (UTF-8 bytes); a bigger one closes
    # the socket with 1009.
    "VOICE_FRAME_MAX_BYTES": 64 * 1024,
    # Longest `text` of a {"type": "message"} frame; a longer one gets an error event.
    "VOICE_MESSAGE_MAX_CHARS": 4000,
}


agents_settings = AppSettings("ROOMKEY_AGENTS", DEFAULTS)
