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
    # --- Call sessions and tool tokens ---
    "TOOL_TOKEN_TTL": 900,  # seconds, as signalwire-sdk's SessionManager default
    "TOOL_TOKEN_MAX_TTL": 86400,
    "TOOL_TOKEN_MAX_USES": 1_000_000,
    # After a rotation the previous tool secret still validates for this long.
    "TOOL_SECRET_GRACE": timedelta(hours=1),
    # How long a process trusts what it read about a session, a tool token or a secret; a
    # session end or revocation made in another process reaches this one within it.
    "TOOL_STATE_CACHE_SECONDS": 1.0,
    "CALL_SESSION_TTL": timedelta(hours=24),
    "CALL_SESSION_RETENTION": timedelta(days=7),
    "CALL_METADATA_MAX_CHARS": 16384,
}


agents_settings = AppSettings("ROOMKEY_AGENTS", DEFAULTS)
