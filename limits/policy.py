"""Which limit applies: the settings (ROOMKEY_LIMITS), or a project's own (ProjectLimits,
edited in the admin, kept per process for PROJECT_CACHE_SECONDS)."""

from collections.abc import Callable
from dataclasses import dataclass

from django.core.signals import setting_changed

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


# --- The settings, read once per change ---------------------------------------------------


class _Rates:
    """The rates of the settings, parsed: read on every request, so made once per change."""

    def __init__(self):
        rates = {**DEFAULT_RATES, **limits_settings.RATES}
        by_address = limits_settings.ADDRESS_RATES
        self.on = bool(limits_settings.RATE_LIMITS)
        self.key = {scope: parse_rate(rates.get(scope)) for scope in SCOPES}
        self.address = {
            scope: parse_rate(by_address[scope] if scope in by_address else rates.get(scope))
            for scope in SCOPES
        }
        self.failed_auth = parse_rate(limits_settings.FAILED_AUTH_RATE)
        self.connect = parse_rate(limits_settings.CONNECT_RATE)
        self.frames = {
            "chat": parse_rate(limits_settings.RELAY_REQUEST_RATE),
            "voice": parse_rate(limits_settings.VOICE_FRAME_RATE),
        }


_rates: _Rates | None = None


def _settings_rates() -> _Rates:
    global _rates
    if _rates is None:
        _rates = _Rates()
    return _rates


def _settings_changed(*, setting, **kwargs):
    global _rates
    if setting == limits_settings._name:
        _rates = None


setting_changed.connect(_settings_changed, weak=False)


# --- A project's own limits ----------------------------------------------------------------

_overrides = TTLCache(lambda: limits_settings.PROJECT_CACHE_SECONDS)
_RATE_FIELDS = {f"{scope}_rate" for scope in SCOPES} | {"relay_request_rate", "voice_frame_rate"}


def _project_overrides(project_id) -> dict:
    """The project's own limits that are set: rates parsed, quotas as they are."""
    if project_id is None:
        return {}
    found, values = _overrides.get(project_id)
    if found:
        return values
    from .models import ProjectLimits

    rows = ProjectLimits.objects.filter(pk=project_id).values()
    values = {
        name: parse_rate(value) if name in _RATE_FIELDS else value
        for name, value in (rows[0] if rows else {}).items()
        if value not in (None, "")
    }
    _overrides.put(project_id, values)
    return values


def forget(project_id=None) -> None:
    """Drop what this process keeps of a project's limits (all projects' when None), and the
    parsed settings."""
    global _rates
    if project_id is None:
        _overrides.clear()
        _rates = None
    else:
        _overrides.forget(project_id)


# --- Rates -------------------------------------------------------------------------------


def rate_limits_on() -> bool:
    return _settings_rates().on


def key_rate(scope: str, project_id=None) -> Rate | None:
    """The rate of `scope` per API key (or chat token) of the project."""
    return _project_overrides(project_id).get(f"{scope}_rate") or _settings_rates().key[scope]


def address_rate(scope: str) -> Rate | None:
    return _settings_rates().address[scope]


def failed_auth_rate() -> Rate | None:
    return _settings_rates().failed_auth


def connect_rate() -> Rate | None:
    return _settings_rates().connect


def frame_rate(kind: str, project_id=None) -> Rate | None:
    """Requests per relay socket (`kind` "chat") or frames per voice socket ("voice")."""
    field = {"chat": "relay_request_rate", "voice": "voice_frame_rate"}[kind]
    return _project_overrides(project_id).get(field) or _settings_rates().frames[kind]


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
