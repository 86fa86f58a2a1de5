"""Small builders the test modules share."""

import time

from tokens import crypto, services
from tokens.models import SigningKey

RELAY = "wss://relay.example.com/api/relay/ws"
RW = {"read": True, "write": True}


def mint_chat(project, *, member_id="member-1", channels=None, state=None, api_key=None):
    """A chat token issued through the service, as the endpoint issues it."""
    return services.chat_token_issue(
        project=project,
        ttl_minutes=60,
        channels=channels or {"general": RW},
        member_id=member_id,
        state=state or {},
        relay_url=RELAY,
        api_key=api_key,
    )


def forge_chat_jwt(project, **claims) -> str:
    """A chat JWT signed with the project's real key but never registered (no IssuedToken)."""
    key = SigningKey.objects.filter(project=project).first()
    now = int(time.time())
    payload = {"iss": str(project.pk), "sub": "alice", "jti": "nope", "iat": now, "exp": now + 60}
    payload.update(claims)
    return crypto.jwt_encode(
        payload, secret=bytes(key.secret), alg="HS512", headers={"typ": "VRT", "kid": key.kid}
    )
