"""The `tool` token kind (signalwire-sdk SessionManager tokens, in agents.toolformat's wire
format) and what validating one reads.

A tool token carries no project id. Roomkey finds a token it issued by its jti, a hash of the
decoded token (toolformat.jti), and the registry row names the project whose secret checks
the signature: that is the `decoder` registered here, used by introspection, revocation and
`debugtoken`. A token the SDK minted itself has no row; it is validated through the validate
endpoint, which knows the caller's project and so its secret.

Validation must stay within a few times the SDK's stateless check, so what it reads about a
project's secrets, a session and a token is kept per process for TOOL_STATE_CACHE_SECONDS.
This process forgets an entry as soon as it ends a session, rotates a secret or sees a
revocation (the tokens_revoked signal); other processes within that many seconds. Use counts
of tokens with `max_uses` are never cached: each validation is one conditional UPDATE.
"""

import threading
import time
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.views.decorators.debug import sensitive_variables

from tokens import kinds
from tokens.cache import TTLCache
from tokens.crypto import MalformedToken
from tokens.kinds import Decoded, TokenKind
from tokens.models import IssuedToken
from tokens.services import InvalidToken

from . import toolformat
from .conf import agents_settings
from .models import CallSession, ToolSecret
from .toolformat import ToolTokenParts

KIND = "tool"

_CACHE_MAX = 8192  # entries per cache: garbage tokens must not grow them forever


def _ttl() -> float:
    return agents_settings.TOOL_STATE_CACHE_SECONDS


_secrets = TTLCache(_ttl, max_entries=_CACHE_MAX)  # project id (str) -> ((key, until|None), …)
_sessions = TTLCache(_ttl, max_entries=_CACHE_MAX)  # (project id, call id) -> SessionState|None
_tokens = TTLCache(_ttl, max_entries=_CACHE_MAX)  # jti -> TokenState | None
# (project pk, decoded token) -> (generation, Context): everything validation reads, for
# tokens whose signature checked out. Any local `forget` bumps the generation, which drops
# every entry at once (they are cheap to read again), including one whose reads began before
# the forget and are stored after it.
_contexts = TTLCache(_ttl, max_entries=_CACHE_MAX)
_generation = 0
_generation_lock = threading.Lock()


@dataclass(frozen=True)
class SessionState:
    pk: int
    ended: bool
    expires_at: float  # epoch seconds


@dataclass(frozen=True)
class TokenState:
    project_id: uuid.UUID
    max_uses: int | None
    revoked: bool


def _cached(cache: TTLCache, key, read):
    hit, value = cache.get(key)
    if not hit:
        value = read()
        cache.put(key, value)
    return value


def _next_generation() -> None:
    global _generation
    with _generation_lock:
        _generation += 1
    _contexts.clear()


def forget(*, project_id=None, call_id=None, jtis=()) -> None:
    _next_generation()
    if project_id is not None:
        if call_id is None:
            _secrets.forget(str(project_id))
        else:
            _sessions.forget((str(project_id), call_id))
    for jti in jtis:
        _tokens.forget(jti)


def forget_after_commit(**what) -> None:
    """Forget now (this transaction's own reads) and again once it commits (reads made by
    other requests meanwhile, of the rows as they were)."""
    forget(**what)
    transaction.on_commit(lambda: forget(**what))


def forget_all() -> None:
    _next_generation()
    _secrets.clear()
    _sessions.clear()
    _tokens.clear()


def _on_tokens_revoked(sender, jtis, **kwargs):
    forget(jtis=jtis)


def connect_signals() -> None:
    from tokens.signals import tokens_revoked

    tokens_revoked.connect(_on_tokens_revoked, dispatch_uid="agents.tooltokens.forget_revoked")


# --- Reads (cached) -----------------------------------------------------------------------


@sensitive_variables()  # keep key material out of error reports
def secret_keys(project_id) -> tuple:
    """((key bytes, valid until epoch or None), …): the current secret, and the previous one
    while its grace window lasts."""
    return _cached(_secrets, str(project_id), lambda: _read_secret_keys(project_id))


@sensitive_variables()  # keep key material out of error reports
def _read_secret_keys(project_id) -> tuple:
    row = ToolSecret.objects.filter(project_id=project_id).first()
    if row is None:
        return ()
    keys = ((row.secret.encode(), None),)
    if row.previous_secret and row.rotated_at is not None:
        until = (row.rotated_at + agents_settings.TOOL_SECRET_GRACE).timestamp()
        keys += ((row.previous_secret.encode(), until),)
    return keys


def signed_for(parts: ToolTokenParts, project_id, now: float) -> bool:
    return _signed_until(parts, project_id, now) is not False


@sensitive_variables()  # keep key material out of error reports
def _signed_until(parts: ToolTokenParts, project_id, now: float) -> float | bool | None:
    """None: signed with the current secret; a time: with the previous one, good until then;
    False: with neither."""
    for key, until in secret_keys(project_id):
        if (until is None or now < until) and toolformat.signed_with(parts, key):
            return until
    return False


@dataclass(frozen=True)
class Context:
    jti: str
    signed_until: float | None
    session: SessionState | None
    token: TokenState | None


def context(project_id, parts: ToolTokenParts, now: float) -> Context | None:
    """What validation needs to know about a token of `project_id` beyond its own fields, or
    None if it is not signed with a secret of that project usable at `now`."""
    key = (project_id, parts.text)
    hit, cached = _contexts.get(key)
    if hit and cached[0] == _generation:
        ctx = cached[1]
        return ctx if ctx.signed_until is None or now < ctx.signed_until else None
    generation = _generation  # read first: a forget during the reads below makes this stale
    signed_until = _signed_until(parts, project_id, now)
    if signed_until is False:
        return None  # not cached: garbage must not fill the cache
    jti = toolformat.jti(parts)
    ctx = Context(jti, signed_until, session_state(project_id, parts.call_id), token_state(jti))
    _contexts.put(key, (generation, ctx))
    return ctx


def session_state(project_id, call_id: str) -> SessionState | None:
    def read():
        row = (
            CallSession.objects.filter(project_id=project_id, call_id=call_id)
            .values_list("pk", "ended_at", "expires_at")
            .first()
        )
        return None if row is None else SessionState(row[0], row[1] is not None, row[2].timestamp())

    return _cached(_sessions, (str(project_id), call_id), read)


def token_state(jti: str) -> TokenState | None:
    """The registry's view of a tool token; None for one Roomkey did not issue."""

    def read():
        row = (
            IssuedToken.objects.filter(pk=jti, kind=KIND)
            .values_list("project_id", "tool_token__max_uses", "revoked_at")
            .first()
        )
        return None if row is None else TokenState(row[0], row[1], row[2] is not None)

    return _cached(_tokens, jti, read)


# --- The registered kind ------------------------------------------------------------------


def _sniff(raw: str) -> bool:
    # JWTs (every other kind) contain dots; base64 never does.
    return "." not in raw and len(raw) % 4 == 0


def _decode(raw: str) -> Decoded:
    try:
        parts = toolformat.parse(raw)
    except MalformedToken:
        raise InvalidToken("malformed") from None
    jti = toolformat.jti(parts)
    row = IssuedToken.objects.filter(pk=jti, kind=KIND).values_list("project_id", "issued_at")
    row = row.first()
    if row is None:
        # Not issued by Roomkey (an SDK-minted token, or a forgery): without the project there
        # is no secret to check it with here. The validate endpoint can, for its caller.
        raise InvalidToken("unknown")
    if not signed_for(parts, row[0], time.time()):
        raise InvalidToken("bad_signature")
    return Decoded(
        kind=KIND,
        jti=jti,
        project_id=str(row[0]),
        subject=parts.call_id,
        issued_at=int(row[1].timestamp()),
        expires_at=parts.expiry,
        claims={
            "call_id": parts.call_id,
            "function": parts.function,
            "expiry": parts.expiry,
            "nonce": parts.nonce,
        },
    )


TOOL = kinds.register(
    TokenKind(name=KIND, label="Tool", decoder=_decode, sniff=_sniff, peek=toolformat.fields)
)
