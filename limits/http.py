"""Rate limits of the API views: a request guard (tokens.guards) every view runs.

Before authentication: the client address's failed-authentication budget (a client over it
is refused without its credentials being looked at) and the address's count for the view's
scope. After: the count of the API key (or, on the Fabric paths, the chat token) for the
scope, at the project's rate. A failed authentication is counted per address. Every response
carries RateLimit-Limit / -Remaining / -Reset of its tightest counter; a refusal is the
view's own format's 429 with Retry-After.

A view names its scope with `limit_scope` (limits.policy.SCOPES; "api" when absent).
"""

from rest_framework import exceptions

from tokens.api import client_ip
from tokens.guards import RequestGuard

from . import policy, services


def _scope(view) -> str:
    return getattr(view, "limit_scope", policy.DEFAULT_SCOPE)


def _caller(auth) -> tuple[str, str] | None:
    """(counter id, what it is called in a 429) of the authenticated credential."""
    prefix = getattr(auth, "prefix", None)
    if prefix is not None:
        return f"key:{prefix}", "API key"
    jti = getattr(auth, "jti", None)
    if jti is not None:
        return f"token:{jti}", "token"
    return None


class RateLimitGuard(RequestGuard):
    def before_authentication(self, request, view):
        checks, refused = services.admit(client_ip(request), scope=_scope(view))
        request.limit_checks = checks
        if refused is not None:
            raise refused

    def after_authentication(self, request, view):
        caller = _caller(request.auth)
        if caller is None:
            return
        scope = _scope(view)
        check = services.caller_hit(
            scope=scope,
            caller=caller[0],
            per=caller[1],
            project_id=getattr(getattr(request.user, "project", None), "pk", None),
        )
        if check is None:
            return
        request.limit_checks = [*getattr(request, "limit_checks", []), check]
        if check.exceeded:
            raise services.refusal(check, policy.SCOPES[scope])

    def authentication_failed(self, request, view, exc):
        # Missing credentials cost no lookup; wrong ones are counted.
        if not isinstance(exc, exceptions.AuthenticationFailed):
            return exc
        return services.auth_failed(client_ip(request)) or exc

    def response_headers(self, request, view):
        check = services.tightest(getattr(request, "limit_checks", ()))
        return check.headers() if check is not None else {}
