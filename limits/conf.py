"""Settings of the limits app, read at call time (tokens.conf's pattern).

`settings.ROOMKEY_LIMITS` is one dict; `limits_settings.NAME` reads a key with its default. A
served process takes the values from the environment (config/settings.py: ROOMKEY_RATES, …).
Rates are written "N/period" (limits.rates); None or "" means no limit.
"""

from tokens.conf import AppSettings

# Requests per minute of each API scope (limits.policy.SCOPES), per API key (per chat token
# on the Fabric paths) and, separately, per client address.
DEFAULT_RATES = {
    "issue": "3000/min",
    "validate": "6000/min",
    "introspect": "3000/min",
    "revoke": "1200/min",
    "chat": "3000/min",
    "api": "3000/min",
}

DEFAULTS = {
    # Off: no request or frame is counted or refused (quotas still apply).
    "RATE_LIMITS": True,
    "RATES": DEFAULT_RATES,
    # Per client address; a scope absent here has its per-key rate.
    "ADDRESS_RATES": {},
    # Failed authentications (a wrong API key or token) per client address; past it, every
    # request from the address is refused before its credentials are looked at.
    "FAILED_AUTH_RATE": "60/min",
    # WebSocket handshakes (relay and voice) per client address.
    "CONNECT_RATE": "600/min",
    # Requests per relay socket (event acks are not counted), frames per voice socket.
    "RELAY_REQUEST_RATE": "200/10s",
    "VOICE_FRAME_RATE": "100/10s",
    # Quotas per project (None: no quota).
    "MAX_CHAT_SOCKETS": 1000,
    "MAX_VOICE_SOCKETS": 100,
    "MAX_CALL_SESSIONS": 1000,
    "MAX_VOICE_SESSION_SECONDS": 3600,
    # A socket's quota slot is renewed by its server process every third of this; a process
    # that dies frees its slots when their lease runs out.
    "SOCKET_LEASE_SECONDS": 90.0,
    # How long a process keeps a project's own limits (admin) before reading them again.
    "PROJECT_CACHE_SECONDS": 5.0,
    # Counters live in Redis when set (default: settings.REDIS_URL), else in Django's cache.
    "REDIS_URL": None,
    # A Redis call that takes longer fails (and the limits fail open, or closed for failed
    # authentication); Redis is then left alone for REDIS_RETRY_SECONDS.
    "REDIS_TIMEOUT_SECONDS": 0.25,
    "REDIS_RETRY_SECONDS": 1.0,
    "KEY_PREFIX": "rk:limits:",
}

limits_settings = AppSettings("ROOMKEY_LIMITS", DEFAULTS)
