"""Chat's settings, read at call time (tokens.conf's pattern).

`settings.ROOMKEY_CHAT` is one dict; `chat_settings.NAME` reads a key with its default, and
the `settings` fixture changes it in tests. A served process takes the values from the
environment (config/settings.py: ROOMKEY_CHAT_RELAY_URL, …).
"""

from tokens.conf import AppSettings

DEFAULTS = {
    # Public WebSocket URL of the relay, put in chat tokens' `ch` header. Empty: derived from
    # the request (ws:// or wss:// + Host + the relay's path).
    "RELAY_URL": "",
    # A relay socket that has not sent a valid signalwire.connect by then is closed (4002).
    "AUTH_TIMEOUT_SECONDS": 5.0,
    # Largest relay frame, in bytes of UTF-8; a bigger one closes the socket (1009).
    "MAX_FRAME_BYTES": 128 * 1024,
    # An authenticated socket re-checks its token this often even when it sends nothing.
    "RECHECK_SECONDS": 30.0,
}

chat_settings = AppSettings("ROOMKEY_CHAT", DEFAULTS)
