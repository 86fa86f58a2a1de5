"""Rate limits of the API views: a request guard (tokens.guards) every view runs.

Before authentication, in one round trip: the client address's failed-authentication budget
(a client over it is refused without its credentials being looked at), the address's count for
the view's scope, and the presented credential's (by its digest). After it: that count against
the rate of the credential's project, for the API key (on the Fabric paths, the chat token). A
failed authentication is counted per address. Every response
carries RateLimit-Limit / -Remaining / -Reset of its tightest counter; a refusal is the
view's own format's 429 with Retry-After.

A view names its scope with `limit_scope` (limits.policy.SCOPES; "api" when absent).
"""

from rest_framework import authentication, exceptions

from tokens import crypto
from tokens.guards import RequestGuard

from . import policy, services


def _scope(view) -> str:
    return getattr(view, "limit_scope", policy.DEFAULT_SCOPE)


def credential_of(authorization: bytes) -> str | None:
    """The credential an Authorization header presents (a Bearer value, a Basic password),
    unverified."""
    parts = authorization.split()
    if len(parts) != 2:
        return None
    scheme, value = parts[0].lower(), parts[1]
    if scheme == b"bearer":
        return value.decode("latin-1")
    if scheme == b"basic":
        decoded = crypto.decode_basic_credentials(value)
        return decoded[1] if decoded else None
    return None


def _per(auth) -> str:
    return "API key" if hasattr(auth, "prefix") else "token"


class RateLimitGuard(RequestGuard):
    def before_authentication(self, request, view):
        # Counted on the event loop already when the counters are in Redis (limits.asgi).
        admission = getattr(request._request, "scope", {}).get("roomkey.limits")
        if admission is None:
            admission = services.admit(
                request.META.get("REMOTE_ADDR"),
                scope=_scope(view),
                credential=credential_of(authentication.get_authorization_header(request)),
            )
        request.limits_admission = admission
        request.limits_checks = list(admission.checks)
        if admission.refusal is not None:
            raise admission.refusal

    def after_authentication(self, request, view):
        if request.auth is None:
            return
        scope = _scope(view)
        check = services.credential_check(
            request.limits_admission,
            scope=scope,
            per=_per(request.auth),
            project_id=getattr(getattr(request.user, "project", None), "pk", None),
        )
        if check is None:
            return
        request.limits_checks.append(check)
        if check.exceeded:
            raise services.refusal(check, policy.SCOPES[scope])

    def authentication_failed(self, request, view, exc):
        # Missing credentials cost no lookup; wrong ones are counted.
        if not isinstance(exc, exceptions.AuthenticationFailed):
            return exc
        return services.auth_failed(request.META.get("REMOTE_ADDR")) or exc

    def response_headers(self, request, view):
        check = services.tightest(getattr(request, "limits_checks", ()))
        return check.headers() if check is not None else {}
