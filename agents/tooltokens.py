"""The `tool` token kind (signalwire-sdk SessionManager tokens) and what validation reads.

A tool token carries no project id. Roomkey finds a token it issued by its jti, a hash of the
decoded token (crypto.tool_token_jti), and the registry row names the project whose secret
checks the signature: that is the `decoder` registered here, used by introspection,
revocation and `debugtoken`. A token the SDK minted itself has no row; it is validated through
the validate endpoint, which knows the caller's project and so its secret.

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

from django.views.decorators.debug import sensitive_variables

from tokens import crypto, kinds
from tokens.conf import roomkey_settings
from tokens.kinds import Decoded, TokenKind
from tokens.models import IssuedToken
from tokens.services import InvalidToken

KIND = "tool"

_lock = threading.Lock()
_CACHE_MAX = 8192
_secrets: dict = {}  # project id (str) -> (monotonic, ((key bytes, valid until epoch|None), …))
_sessions: dict = {}  # (project id, call id) -> (monotonic, SessionState | None)
_tokens: dict = {}  # jti -> (monotonic, TokenState | None)
# (project pk, decoded token) -> (generation, monotonic, Context): everything validation reads,
# for tokens whose signature checked out. Any local `forget` bumps the generation, which
# drops every entry at once (they are cheap to read again).
_contexts: dict = {}
_generation = 0


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


def _get(cache: dict, key):
    hit = cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < roomkey_settings.TOOL_STATE_CACHE_SECONDS:
        return True, hit[1]
    return False, None


def _put(cache: dict, key, value) -> None:
    if roomkey_settings.TOOL_STATE_CACHE_SECONDS <= 0:
        return
    with _lock:
        if len(cache) >= _CACHE_MAX:
            cache.clear()  # bounded: garbage tokens must not grow it forever
        cache[key] = (time.monotonic(), value)


def forget(*, project_id=None, call_id=None, jtis=()) -> None:
    global _generation
    with _lock:
        _generation += 1
        if project_id is not None:
            if call_id is None:
                _secrets.pop(str(project_id), None)
            else:
                _sessions.pop((str(project_id), call_id), None)
        for jti in jtis:
            _tokens.pop(jti, None)


def forget_all() -> None:
    global _generation
    with _lock:
        _generation += 1
        _contexts.clear()
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
    from .models import ToolSecret

    pid = str(project_id)
    hit, keys = _get(_secrets, pid)
    if hit:
        return keys
    row = ToolSecret.objects.filter(project_id=pid).first()
    keys = ()
    if row is not None:
        keys = ((row.secret.encode(), None),)
        if row.previous_secret and row.rotated_at is not None:
            until = (row.rotated_at + roomkey_settings.TOOL_SECRET_GRACE).timestamp()
            keys += ((row.previous_secret.encode(), until),)
    _put(_secrets, pid, keys)
    return keys


def signed_for(parts: crypto.ToolTokenParts, project_id, now: float) -> bool:
    return _signed_until(parts, project_id, now) is not False


@sensitive_variables()  # keep key material out of error reports
def _signed_until(parts: crypto.ToolTokenParts, project_id, now: float) -> float | bool | None:
    """None: signed with the current secret; a time: with the previous one, good until then;
    False: with neither."""
    for key, until in secret_keys(project_id):
        if (until is None or now < until) and crypto.tool_token_signed_with(parts, key):
            return until
    return False


@dataclass(frozen=True)
class Context:
    jti: str
    signed_until: float | None
    session: SessionState | None
    token: TokenState | None


def context(project_id, parts: crypto.ToolTokenParts, now: float) -> Context | None:
    """What validation needs to know about a token of `project_id` beyond its own fields, or
    None if it is not signed with a secret of that project usable at `now`."""
    ttl = roomkey_settings.TOOL_STATE_CACHE_SECONDS
    key = (project_id, parts.text)
    hit = _contexts.get(key)
    if hit is not None and hit[0] == _generation and time.monotonic() - hit[1] < ttl:
        ctx = hit[2]
        return ctx if ctx.signed_until is None or now < ctx.signed_until else None
    generation = _generation  # read first: a forget during the reads below makes this stale
    signed_until = _signed_until(parts, project_id, now)
    if signed_until is False:
        return None  # not cached: garbage must not fill the cache
    jti = crypto.tool_token_jti(parts)
    ctx = Context(jti, signed_until, session_state(project_id, parts.call_id), token_state(jti))
    if ttl > 0:
        with _lock:
            if len(_contexts) >= _CACHE_MAX:
                _contexts.clear()
            _contexts[key] = (generation, time.monotonic(), ctx)
    return ctx


def session_state(project_id, call_id: str) -> SessionState | None:
    from .models import CallSession

    key = (str(project_id), call_id)
    hit, state = _get(_sessions, key)
    if hit:
        return state
    row = (
        CallSession.objects.filter(project_id=project_id, call_id=call_id)
        .values_list("pk", "ended_at", "expires_at")
        .first()
    )
    state = None if row is None else SessionState(row[0], row[1] is not None, row[2].timestamp())
    _put(_sessions, key, state)
    return state


def token_state(jti: str) -> TokenState | None:
    """The registry's view of a tool token; None for one Roomkey did not issue."""
    hit, state = _get(_tokens, jti)
    if hit:
        return state
    row = (
        IssuedToken.objects.filter(pk=jti, kind=KIND)
        .values_list("project_id", "tool_token__max_uses", "revoked_at")
        .first()
    )
    state = None if row is None else TokenState(row[0], row[1], row[2] is not None)
    _put(_tokens, jti, state)
    return state


# --- The registered kind ------------------------------------------------------------------


def _sniff(raw: str) -> bool:
    # JWTs (every other kind) contain dots; base64 never does.
    return "." not in raw and len(raw) % 4 == 0


def _decode(raw: str) -> Decoded:
    try:
        parts = crypto.tool_token_parse(raw)
    except crypto.MalformedToken:
        raise InvalidToken("malformed") from None
    jti = crypto.tool_token_jti(parts)
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


def _peek(raw: str) -> dict:
    return crypto.tool_token_fields(raw)


TOOL = kinds.register(TokenKind(name=KIND, label="Tool", decoder=_decode, sniff=_sniff, peek=_peek))
