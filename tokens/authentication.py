"""DRF authentication with a project's API key.

Two ways to present it: `Authorization: Bearer <key>`, and HTTP Basic `<project_id>:<key>`
(what SignalWire's clients send). Every failure raises the same AuthenticationFailed, so an
unknown project, a wrong key, an expired key and a revoked key cannot be told apart.
"""

from rest_framework import authentication, exceptions

from . import crypto, services

INVALID = "Invalid API key."


class ProjectPrincipal:
    """request.user for API-key requests: the project the key belongs to, not a person."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, api_key):
        self.api_key = api_key
        self.project = api_key.project

    def __str__(self):
        return f"api-key:{self.api_key.prefix}"


def _authorization(request, scheme: bytes) -> bytes | None:
    parts = authentication.get_authorization_header(request).split()
    if not parts or parts[0].lower() != scheme:
        return None
    if len(parts) != 2:
        raise exceptions.AuthenticationFailed(INVALID)
    return parts[1]


def _principal(raw: str, project_id: str | None = None):
    key = services.api_key_authenticate(raw=raw, project_id=project_id)
    if key is None:
        raise exceptions.AuthenticationFailed(INVALID)
    return ProjectPrincipal(key), key


class ApiKeyBearerAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        credential = _authorization(request, b"bearer")
        if credential is None:
            return None
        try:
            raw = credential.decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(INVALID) from None
        return _principal(raw)

    def authenticate_header(self, request):
        return 'Bearer realm="roomkey"'


class ApiKeyBasicAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        credential = _authorization(request, b"basic")
        if credential is None:
            return None
        decoded = crypto.decode_basic_credentials(credential)
        if decoded is None:
            raise exceptions.AuthenticationFailed(INVALID)
        project_id, raw = decoded
        return _principal(raw, project_id=project_id.strip().lower())

    def authenticate_header(self, request):
        return 'Basic realm="roomkey"'
