"""Tool tokens (seed 001): issuing one for a function during a call session, validating one
(Roomkey's or the SDK's) and debugging one. The wire format is agents.toolformat's; what
validation reads, cached per process, is agents.tooltokens'."""

import time
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from tokens.conf import roomkey_settings
from tokens.crypto import MalformedToken
from tokens.errors import BadInput
from tokens.models import ApiKey, IssuedToken, Project
from tokens.services import token_revoke_many

from .. import toolformat, tooltokens
from ..conf import agents_settings
from ..errors import SessionEnded
from ..models import CallSession, ToolToken
from ..validation import function_problem
from .registry import record_minted
from .tool_secrets import tool_secret_get_or_create

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
    Raises SessionEnded, BadInput for a bad function, ttl or max_uses."""
    problem = function_problem(function)
    if problem:
        raise BadInput(problem, field="function")
    max_ttl, most_uses = agents_settings.TOOL_TOKEN_MAX_TTL, agents_settings.TOOL_TOKEN_MAX_USES
    ttl = agents_settings.TOOL_TOKEN_TTL if ttl is None else ttl
    if not 1 <= ttl <= max_ttl:
        raise BadInput(f"must be 1 to {max_ttl} seconds", field="ttl")
    if max_uses is not None and not 1 <= max_uses <= most_uses:
        raise BadInput(f"must be 1 to {most_uses}", field="max_uses")
    # Shared lock: ending the session waits for this issue to commit, then revokes its token.
    row = CallSession.objects.select_for_update().get(pk=session.pk)
    if row.ended_at is not None or row.expires_at <= timezone.now():
        raise SessionEnded()
    secret = tool_secret_get_or_create(project=row.project)
    iat = int(time.time())
    expiry = iat + ttl
    token = toolformat.encode(
        secret=secret.secret, call_id=row.call_id, function=function, expiry=expiry
    )
    issued = record_minted(
        project=row.project,
        kind=tooltokens.KIND,
        jti=toolformat.jti(toolformat.parse(token)),
        subject=row.call_id,
        issued_at=iat,
        expires_at=expiry,
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
        parts = toolformat.parse(token)
    except MalformedToken:
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
    result = toolformat.fields(token)
    if result.get("valid_format"):
        try:
            parts = toolformat.parse(token)
        except MalformedToken:
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
