"""The API views' check before authentication, made on the event loop when the counters are
in Redis (limits.services.admit_async): waiting for Redis in the request's worker thread would
cost a GIL hand-over per request under concurrency, more than the round trip itself.

`LimitsBeforeViews` wraps the HTTP application (config/asgi.py). For a path whose view is
guarded (tokens.errors.ContractErrorsMixin), it counts the request as the guard would and
leaves the Admission in the ASGI scope; the guard (limits.http) then uses it instead of
counting again. Refusals are still raised by the guard, in the view's own format.
"""

import functools

from django.urls import Resolver404, resolve

from tokens.errors import ContractErrorsMixin

from . import counters, policy, services
from .http import credential_of

SCOPE_KEY = "roomkey.limits"


@functools.lru_cache(maxsize=1024)
def _limit_scope(path: str) -> str | None:
    """The `limit_scope` of the guarded view `path` routes to, else None."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    view = getattr(match.func, "cls", None) or getattr(match.func, "view_class", None)
    if not (isinstance(view, type) and issubclass(view, ContractErrorsMixin)):
        return None
    return getattr(view, "limit_scope", policy.DEFAULT_SCOPE)


class LimitsBeforeViews:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] == "http"
            and policy.rate_limits_on()
            and isinstance(counters.backend(), counters.RedisCounters)
        ):
            limit_scope = _limit_scope(scope["path"])
            if limit_scope is not None:
                client = scope.get("client")
                authorization = next(
                    (v for k, v in scope.get("headers", ()) if k == b"authorization"), b""
                )
                admission = await services.admit_async(
                    client[0] if client else None,
                    scope=limit_scope,
                    credential=credential_of(authorization),
                )
                scope = {**scope, SCOPE_KEY: admission}
        await self.app(scope, receive, send)
