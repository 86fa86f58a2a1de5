"""Chat settings, read at call time from settings.ROOMKEY (tests change them with the
`settings` fixture; a served process takes them from the environment, config/settings.py)."""

from django.conf import settings

DEFAULTS = {
    # A relay socket that has not sent a valid signalwire.connect by then is closed (4002).
    "CHAT_AUTH_TIMEOUT_SECONDS": 5.0,
    # Largest relay frame, in bytes of UTF-8; a bigger one closes the socket (1009).
    "CHAT_MAX_FRAME_BYTES": 128 * 1024,
    # An authenticated socket re-checks its token this often even when it sends nothing.
    "CHAT_RECHECK_SECONDS": 30.0,
}


def _get(name):
    return getattr(settings, "ROOMKEY", {}).get(name, DEFAULTS[name])


def auth_timeout() -> float:
    return float(_get("CHAT_AUTH_TIMEOUT_SECONDS"))


def max_frame_bytes() -> int:
    return int(_get("CHAT_MAX_FRAME_BYTES"))


def recheck_seconds() -> float:
    return float(_get("CHAT_RECHECK_SECONDS"))
