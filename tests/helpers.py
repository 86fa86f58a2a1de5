"""Small builders the test modules share."""

import threading
import time

from django.db import connection

from chat.services import chat_token_issue
from tokens import crypto
from tokens.models import SigningKey

RELAY = "wss://relay.example.com/api/relay/ws"
RW = {"read": True, "write": True}


def mint_chat(project, *, member_id="member-1", channels=None, state=None, api_key=None):
    """A chat token issued through the service, as the endpoint issues it."""
    return chat_token_issue(
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


def run_together(work, n: int) -> list:
    """Run work(i) in n threads released at the same moment; return the results by i.

    Each thread closes its own database connection. Any exception in a thread fails the
    test, with the thread's exception; a thread still running after a minute fails it too."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def run(i):
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results
