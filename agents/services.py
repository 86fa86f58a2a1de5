"""Writes of the agents app. Keyword-only verbs, atomic; the API, the admin, the commands and
the SessionManager facade all call these."""

# --- Call sessions and tool tokens (issue 5, seed 001) ------------------------------------

import json
import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from tokens import crypto, live
from tokens.conf import roomkey_settings
from tokens.kinds import Decoded
from tokens.models import ApiKey, IssuedToken, Project
from tokens.services import record_issued, token_revoke_many

from . import tooltokens
from .models import Agent, CallSession, ToolSecret, ToolToken

METADATA_KEY_MAX = 256
METADATA_MAX_DEPTH = 32
CALL_ID_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-~:@")

# Why a tool token is not valid, in the order they are checked. The signature comes first:
# nothing an unsigned token says is reported back.
REASONS = (
    "malformed",
    "bad_signature",
    "wrong_function",
    "wrong_call",
    "expired",
    "unknown_session",
    "session_ended",
    "used_up",
    "revoked",
)


class CallSessionError(Exception):
    """A request the session's state does not allow; `code` names which."""

    code = "invalid"

    def __init__(self, message: str = ""):
        super().__init__(message or self.__doc__)


class SessionExists(CallSessionError):
    """A session with this call id exists already."""

    code = "exists"


class SessionNotFound(CallSessionError):
    """No such session."""

    code = "not_found"


class SessionEnded(CallSessionError):
    """The session has ended."""

    code = "ended"


class BadMetadata(CallSessionError):
    """The metadata is not acceptable."""

    code = "invalid_metadata"


def call_id_problem(call_id) -> str | None:
    """Why `call_id` cannot name a session, or None. URL-safe characters only (plus ":" and
    "@"), so every call id can appear in the REST paths as it is."""
    if not isinstance(call_id, str) or not call_id:
        return "Must be a non-empty string."
    if len(call_id) > crypto.TOOL_CALL_ID_MAX:
        return f"Must be at most {crypto.TOOL_CALL_ID_MAX} characters."
    if not set(call_id) <= CALL_ID_ALLOWED or call_id in (".", ".."):
        return "May contain only letters, digits and . _ - ~ : @ (and is not . or ..)."
    return None


def function_problem(function) -> str | None:
    if not isinstance(function, str) or not crypto.TOOL_FUNCTION.fullmatch(function):
        return "Must be 1 to 64 letters, digits, underscores or hyphens."
    return None


def metadata_chars(metadata: dict) -> int:
    """The length the size limit counts: compact JSON, a non-ASCII character counting as one."""
    return len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False))


def metadata_problem(metadata) -> str | None:
    """Why `metadata` cannot be stored, or None."""
    if not isinstance(metadata, dict):
        return "Must be a JSON object."
    for key in metadata:
        if not isinstance(key, str) or not 1 <= len(key) <= METADATA_KEY_MAX:
            return f"Keys must be 1 to {METADATA_KEY_MAX} characters."
    problem = _json_problem(metadata, 1)
    if problem:
        return problem
    try:
        size = metadata_chars(metadata)
    except (TypeError, ValueError):
        return "Must be JSON."
    limit = roomkey_settings.CALL_METADATA_MAX_CHARS
    if size > limit:
        return f"Must be at most {limit} characters as compact JSON (is {size})."
    return None


def _json_problem(value, depth) -> str | None:
    # NUL and lone surrogates are valid JSON that PostgreSQL cannot store.
    if isinstance(value, str):
        if "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value):
            return "Must not contain NUL characters or unpaired surrogates."
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "Numbers must be finite."
    if not isinstance(value, dict | list):
        return None
    if depth > METADATA_MAX_DEPTH:
        return f"Must not be nested more than {METADATA_MAX_DEPTH} levels deep."
    items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
    for key, item in items:
        problem = (key is not None and _json_problem(key, depth)) or _json_problem(item, depth + 1)
        if problem:
            return problem
    return None


# --- Tool secrets -------------------------------------------------------------------------


def tool_secret_get_or_create(*, project: Project) -> ToolSecret:
    row = ToolSecret.objects.filter(project=project).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            row = ToolSecret.objects.create(project=project, secret=crypto.new_tool_secret())
    except IntegrityError:  # made by a concurrent first use
        return ToolSecret.objects.get(project=project)
    _forget_after_commit(project_id=project.pk)  # a validation may have cached "no secret"
    return row


@transaction.atomic
def tool_secret_rotate(*, project: Project) -> ToolSecret:
    """A new secret; the current one keeps validating for TOOL_SECRET_GRACE."""
    tool_secret_get_or_create(project=project)
    row = ToolSecret.objects.select_for_update().get(project=project)
    row.previous_secret = row.secret
    row.secret = crypto.new_tool_secret()
    row.rotated_at = timezone.now()
    row.save(update_fields=["secret", "previous_secret", "rotated_at"])
    _forget_after_commit(project_id=project.pk)
    return row


def previous_valid_until(row: ToolSecret) -> datetime | None:
    if not row.previous_secret or row.rotated_at is None:
        return None
    return row.rotated_at + roomkey_settings.TOOL_SECRET_GRACE


def _forget_after_commit(**what) -> None:
    tooltokens.forget(**what)
    transaction.on_commit(lambda: tooltokens.forget(**what))


# --- Sessions -----------------------------------------------------------------------------


def call_session_create(
    *,
    project: Project,
    call_id: str | None = None,
    agent: Agent | None = None,
    metadata: dict | None = None,
) -> CallSession:
    """A new session for `call_id` (a random url-safe id, as the SDK makes, when None).
    Raises SessionExists, BadMetadata, ValueError for a bad call id."""
    call_id = call_id or crypto.new_call_id()
    problem = call_id_problem(call_id)
    if problem:
        raise ValueError(f"call_id: {problem}")
    metadata = metadata or {}
    problem = metadata_problem(metadata)
    if problem:
        raise BadMetadata(problem)
    if agent is not None and agent.project_id != project.pk:
        raise ValueError("agent: not in this project")
    now = timezone.now()
    try:
        with transaction.atomic():
            session = CallSession.objects.create(
                project=project,
                call_id=call_id,
                agent=agent,
                metadata=metadata,
                created_at=now,
                expires_at=now + roomkey_settings.CALL_SESSION_TTL,
            )
    except IntegrityError:
        raise SessionExists() from None
    _forget_after_commit(project_id=project.pk, call_id=call_id)
    return session


def call_session_end(*, session: CallSession, by: str = "", reason: str = "ended") -> bool:
    """End the session and revoke its tool tokens. True if this call ended it (idempotent)."""
    with transaction.atomic():
        now = timezone.now()
        ended = CallSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(
            ended_at=now, end_reason=reason[:200]
        )
        if not ended:
            return False
        session.ended_at, session.end_reason = now, reason[:200]
        _revoke_tokens_of([session.pk], by=by or "call-session", reason=f"session {reason}")
        _forget_after_commit(project_id=session.project_id, call_id=session.call_id)
        group = live.resource_group("callsession", f"{session.project_id}:{session.call_id}")
        transaction.on_commit(lambda: live.close_group(group, code=live.CLOSE_ENDED, reason=reason))
    return True


def _revoke_tokens_of(session_pks, *, by: str, reason: str) -> int:
    jtis = ToolToken.objects.filter(session__in=session_pks).values("issued_id")
    return token_revoke_many(queryset=IssuedToken.objects.filter(pk__in=jtis), by=by, reason=reason)


def call_session_revoke_tokens(*, session: CallSession, by: str = "", reason: str = "") -> int:
    """Revoke the session's tool tokens without ending it."""
    return _revoke_tokens_of([session.pk], by=by, reason=reason or "revoked")


def _locked_open(session: CallSession) -> CallSession:
    row = CallSession.objects.select_for_update().get(pk=session.pk)
    if row.ended_at is not None:
        raise SessionEnded()
    return row


@transaction.atomic
def call_session_metadata_update(
    *, session: CallSession, values: dict, replace: bool = False
) -> dict:
    """Merge `values` into the metadata (or replace it). The row lock keeps two concurrent
    merges from losing either's keys. Raises SessionEnded, BadMetadata."""
    row = _locked_open(session)
    metadata = dict(values) if replace else {**row.metadata, **values}
    problem = metadata_problem(metadata)
    if problem:
        raise BadMetadata(problem)
    row.metadata = metadata
    row.save(update_fields=["metadata"])
    session.metadata = metadata
    return metadata


@transaction.atomic
def call_session_metadata_delete(*, session: CallSession, key: str | None = None) -> bool:
    """Remove one key (False if absent), or every key when `key` is None."""
    row = _locked_open(session)
    if key is None:
        row.metadata = {}
    elif key in row.metadata:
        del row.metadata[key]
    else:
        return False
    row.save(update_fields=["metadata"])
    session.metadata = row.metadata
    return True


def call_sessions_cleanup(
    *, project: Project | None = None, now: datetime | None = None, batch_size: int | None = None
) -> tuple[int, int]:
    """End open sessions past `expires_at` (revoking their tokens), then delete sessions ended
    longer ago than CALL_SESSION_RETENTION with their tokens' registry rows; a batch per
    transaction, so a large cleanup never holds one long transaction. Returns (ended, purged).
    """
    now = now or timezone.now()
    batch_size = batch_size or roomkey_settings.CLEAR_BATCH_SIZE
    base = CallSession.objects.all() if project is None else project.call_sessions.all()
    ended = purged = 0
    while True:
        with transaction.atomic():
            batch = list(
                base.filter(ended_at__isnull=True, expires_at__lte=now)
                .order_by("pk")
                .values_list("pk", "project_id", "call_id")[:batch_size]
            )
            if not batch:
                break
            pks = [pk for pk, _, _ in batch]
            ended += CallSession.objects.filter(pk__in=pks, ended_at__isnull=True).update(
                ended_at=now, end_reason="expired"
            )
            _revoke_tokens_of(pks, by="cleanup", reason="session expired")
            for _, project_id, call_id in batch:
                _forget_after_commit(project_id=project_id, call_id=call_id)
    cutoff = now - roomkey_settings.CALL_SESSION_RETENTION
    while True:
        with transaction.atomic():
            batch = list(
                base.filter(ended_at__lt=cutoff)
                .order_by("pk")
                .values_list("pk", "project_id", "call_id")[:batch_size]
            )
            if not batch:
                break
            pks = [pk for pk, _, _ in batch]
            jtis = ToolToken.objects.filter(session__in=pks).values("issued_id")
            IssuedToken.objects.filter(pk__in=jtis).delete()
            purged += (
                CallSession.objects.filter(pk__in=pks).delete()[1].get(CallSession._meta.label, 0)
            )
            for _, project_id, call_id in batch:
                _forget_after_commit(project_id=project_id, call_id=call_id)
    return ended, purged


# --- Tool tokens --------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToolToken:
    token: str
    row: ToolToken

    @property
    def expires_at(self) -> datetime:
        return self.row.issued.expires_at


@transaction.atomic
def tool_token_issue(
    *,
    session: CallSession,
    function: str,
    ttl: int | None = None,
    max_uses: int | None = None,
    api_key: ApiKey | None = None,
    client_ip: str | None = None,
) -> IssuedToolToken:
    """A SignalWire-format tool token for `function` during the session's call, signed with
    the project's current tool secret and recorded in the registry (kind "tool").
    Raises SessionEnded, ValueError for a bad function, ttl or max_uses."""
    problem = function_problem(function)
    if problem:
        raise ValueError(f"function: {problem}")
    ttl = roomkey_settings.TOOL_TOKEN_TTL if ttl is None else ttl
    if not 1 <= ttl <= roomkey_settings.TOOL_TOKEN_MAX_TTL:
        raise ValueError(f"ttl: must be 1 to {roomkey_settings.TOOL_TOKEN_MAX_TTL} seconds")
    if max_uses is not None and not 1 <= max_uses <= roomkey_settings.TOOL_TOKEN_MAX_USES:
        raise ValueError(f"max_uses: must be 1 to {roomkey_settings.TOOL_TOKEN_MAX_USES}")
    # Shared lock: ending the session waits for this issue to commit, then revokes its token.
    row = CallSession.objects.select_for_update().get(pk=session.pk)
    if row.ended_at is not None or row.expires_at <= timezone.now():
        raise SessionEnded()
    secret = tool_secret_get_or_create(project=row.project)
    iat = int(time.time())
    expiry = iat + ttl
    token = crypto.tool_token_encode(
        secret=secret.secret, call_id=row.call_id, function=function, expiry=expiry
    )
    jti = crypto.tool_token_jti(crypto.tool_token_parse(token))
    issued = record_issued(
        project=row.project,
        decoded=Decoded(
            kind=tooltokens.KIND,
            jti=jti,
            project_id=str(row.project_id),
            subject=row.call_id,
            issued_at=iat,
            expires_at=expiry,
        ),
        grants={"function": function, "max_uses": max_uses},
        resource=function,
        api_key=api_key,
        client_ip=client_ip,
    )
    tool = ToolToken.objects.create(
        issued=issued, session=row, function=function, max_uses=max_uses
    )
    return IssuedToolToken(token=token, row=tool)


class ToolCheck(NamedTuple):
    valid: bool
    reason: str | None = None
    jti: str | None = None
    registered: bool = False  # the token is one Roomkey issued (in the registry)


_MALFORMED = ToolCheck(False, "malformed")


def tool_token_validate(
    *, project: Project, call_id, function, token, consume: bool = True, now: float | None = None
) -> ToolCheck:
    """Is `token` good for calling `function` during call `call_id` of `project`, now?

    The SDK's checks (signature with the project's secret, or the previous one within its
    grace window; function; expiry; call id), then Roomkey's: the session exists and is open,
    the token is not used up or revoked. With `consume` (a tool call, not a look) a use of a
    token with `max_uses` is counted, by one conditional UPDATE, so concurrent validations
    never exceed it. Never raises for any token.
    """
    if not isinstance(token, str) or len(token) > roomkey_settings.MAX_TOKEN_BYTES:
        return _MALFORMED
    try:
        parts = crypto.tool_token_parse(token)
    except crypto.MalformedToken:
        return _MALFORMED
    now = time.time() if now is None else now
    ctx = tooltokens.context(project.pk, parts, now)
    if ctx is None:
        return ToolCheck(False, "bad_signature")
    jti, state = ctx.jti, ctx.token
    ours = state is not None  # issued by Roomkey, so in the registry
    if parts.function != function:
        return ToolCheck(False, "wrong_function", jti, ours)
    if parts.call_id != call_id:
        return ToolCheck(False, "wrong_call", jti, ours)
    if parts.expiry <= now:
        return ToolCheck(False, "expired", jti, ours)
    session = ctx.session
    if session is None:
        return ToolCheck(False, "unknown_session", jti, ours)
    if session.ended or session.expires_at <= now:
        return ToolCheck(False, "session_ended", jti, ours)
    if not ours:
        return ToolCheck(True, None, jti)  # minted by the SDK with the project's secret
    if state.project_id != project.pk:
        return ToolCheck(False, "bad_signature", jti)
    if state.max_uses is None:
        if state.revoked:
            return ToolCheck(False, "revoked", jti, True)
        return ToolCheck(True, None, jti, True)
    return _limited(jti, state.max_uses, consume)


def _limited(jti: str, max_uses: int, consume: bool) -> ToolCheck:
    """A token with max_uses: its count and revocation are read (and counted) in the database,
    never from the cache."""
    row = ToolToken.objects.filter(pk=jti).values_list("uses", "issued__revoked_at").first()
    if row is None:  # purged meanwhile
        return ToolCheck(False, "revoked", jti, True)
    uses, revoked_at = row
    if uses >= max_uses:
        return ToolCheck(False, "used_up", jti, True)
    if revoked_at is not None:
        return ToolCheck(False, "revoked", jti, True)
    if not consume:
        return ToolCheck(True, None, jti, True)
    with transaction.atomic():
        # The WHERE makes concurrent validations race for the last use inside the database:
        # exactly max_uses of them update the row, whatever their interleaving. It names only
        # the row's own columns: a join would become `pk IN (subquery)`, which PostgreSQL
        # does not re-check against the row a concurrent validation has just updated.
        counted = ToolToken.objects.filter(pk=jti, uses__lt=max_uses).update(uses=F("uses") + 1)
        if not counted:
            return ToolCheck(False, "used_up", jti, True)
        if ToolToken.objects.filter(pk=jti, uses__gte=max_uses).exists():
            # Spent: revoked in the registry too, so introspection and the admin say so.
            token_revoke_many(
                queryset=IssuedToken.objects.filter(pk=jti), by="max_uses", reason="used up"
            )
    return ToolCheck(True, None, jti, True)


def tool_token_debug(*, project: Project, token) -> dict:
    """signalwire-sdk's debug_token() shape, plus Roomkey's verdict for this project under
    `roomkey` (checked against the token's own call and function; no use is counted)."""
    result = crypto.tool_token_fields(token)
    if result.get("valid_format"):
        try:
            parts = crypto.tool_token_parse(token)
        except crypto.MalformedToken:
            check = _MALFORMED
        else:
            check = tool_token_validate(
                project=project,
                call_id=parts.call_id,
                function=parts.function,
                token=token,
                consume=False,
            )
        result["roomkey"] = {
            "valid": check.valid,
            "reason": check.reason,
            "jti": check.jti,
            "issued_by_roomkey": check.registered,
        }
    return result
