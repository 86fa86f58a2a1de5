"""Which limit applies: the settings (ROOMKEY_LIMITS), or a project's own (ProjectLimits,
edited in the admin, kept per process for PROJECT_CACHE_SECONDS)."""

from collections.abc import Callable
from dataclasses import dataclass

from tokens.cache import TTLCache

from .conf import DEFAULT_RATES, limits_settings
from .rates import Rate, parse_rate

# The API scopes a view declares (`limit_scope`), with what they are called in a 429.
SCOPES = {
    "issue": "Token issuance",
    "validate": "Tool-token validation",
    "introspect": "Introspection",
    "revoke": "Revocation",
    "chat": "The chat API",
    "api": "This API",
}
DEFAULT_SCOPE = "api"


@dataclass(frozen=True)
class Quota:
    """A per-project quota: its setting, its ProjectLimits field, and what it counts."""

    name: str
    setting: str
    label: str


QUOTAS = {
    quota.name: quota
    for quota in (
        Quota("max_chat_sockets", "MAX_CHAT_SOCKETS", "chat sockets open at once"),
        Quota("max_voice_sockets", "MAX_VOICE_SOCKETS", "voice sockets open at once"),
        Quota("max_call_sessions", "MAX_CALL_SESSIONS", "open call sessions"),
        Quota(
            "max_voice_session_seconds", "MAX_VOICE_SESSION_SECONDS", "seconds per voice session"
        ),
    )
}

# What is in use of a counted quota: a function of "now" giving the rows that take a slot
# (each with a `project` foreign key). Apps register theirs (agents: open call sessions).
_usage: dict[str, Callable] = {}


def register_usage(quota: str, rows: Callable) -> None:
    if quota not in QUOTAS:
        raise ValueError(f"unknown quota {quota!r}")
    _usage[quota] = rows


def usage_rows(quota: str, now):
    return _usage[quota](now)


def counted_quotas() -> list[str]:
    return [name for name in QUOTAS if name in _usage]


# --- A project's own limits ----------------------------------------------------------------

_overrides = TTLCache(lambda: limits_settings.PROJECT_CACHE_SECONDS)


def _project_overrides(project_id) -> dict:
    if project_id is None:
        return {}
    found, values = _overrides.get(project_id)
    if found:
        return values
    from .models import ProjectLimits

    rows = ProjectLimits.objects.filter(pk=project_id).values()
    values = {k: v for k, v in (rows[0] if rows else {}).items() if v not in (None, "")}
    _overrides.put(project_id, values)
    return values


def forget(project_id=None) -> None:
    """Drop what this process keeps of a project's limits (all projects' when None)."""
    if project_id is None:
        _overrides.clear()
    else:
        _overrides.forget(project_id)


# --- Rates -------------------------------------------------------------------------------


def rate_limits_on() -> bool:
    return bool(limits_settings.RATE_LIMITS)


def key_rate(scope: str, project_id=None) -> Rate | None:
    """The rate of `scope` per API key (or chat token) of the project."""
    override = _project_overrides(project_id).get(f"{scope}_rate")
    if override:
        return parse_rate(override)
    return parse_rate({**DEFAULT_RATES, **limits_settings.RATES}.get(scope))


def address_rate(scope: str) -> Rate | None:
    rates = limits_settings.ADDRESS_RATES
    if scope in rates:
        return parse_rate(rates[scope])
    return parse_rate({**DEFAULT_RATES, **limits_settings.RATES}.get(scope))


def failed_auth_rate() -> Rate | None:
    return parse_rate(limits_settings.FAILED_AUTH_RATE)


def connect_rate() -> Rate | None:
    return parse_rate(limits_settings.CONNECT_RATE)


def frame_rate(kind: str, project_id=None) -> Rate | None:
    """Requests per relay socket (`kind` "chat") or frames per voice socket ("voice")."""
    field, setting = {
        "chat": ("relay_request_rate", "RELAY_REQUEST_RATE"),
        "voice": ("voice_frame_rate", "VOICE_FRAME_RATE"),
    }[kind]
    override = _project_overrides(project_id).get(field)
    return parse_rate(override or getattr(limits_settings, setting))


# --- Quotas ------------------------------------------------------------------------------


def quota(name: str, project_id=None) -> int | None:
    """The project's quota `name` (QUOTAS), or None for none."""
    override = _project_overrides(project_id).get(name)
    return int(override) if override is not None else quota_default(name)


def voice_session_max_seconds(project_id) -> int | None:
    return quota("max_voice_session_seconds", project_id)


def quota_default(name: str) -> int | None:
    """The settings' value of quota `name` (what an empty ProjectLimits field means)."""
    value = getattr(limits_settings, QUOTAS[name].setting)
    return None if value in (None, "") else int(value)
