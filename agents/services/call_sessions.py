"""Call sessions (seed 001's SessionManager sessions, kept by Roomkey): creating, ending,
their metadata, and the cleanup of expired and old ones."""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from limits.services import quota_reserve
from tokens.conf import roomkey_settings
from tokens.errors import BadInput
from tokens.models import IssuedToken, Project
from tokens.services import token_revoke_many

from .. import toolformat
from ..conf import agents_settings
from ..errors import BadMetadata, SessionEnded, SessionExists
from ..models import Agent, CallSession, ToolToken
from ..tooltokens import forget_after_commit
from ..validation import call_id_problem, metadata_problem


def call_session_create(
    *,
    project: Project,
    call_id: str | None = None,
    agent: Agent | None = None,
    metadata: dict | None = None,
) -> CallSession:
    """A new session for `call_id` (a random url-safe id, as the SDK makes, when None).
    Raises SessionExists, BadMetadata, BadInput for a bad call id or another project's agent,
    QuotaExceeded when the project has its maximum of open sessions."""
    call_id = call_id or toolformat.new_call_id()
    problem = call_id_problem(call_id)
    if problem:
        raise BadInput(problem, field="call_id")
    metadata = metadata or {}
    problem = metadata_problem(metadata)
    if problem:
        raise BadMetadata(problem)
    if agent is not None and agent.project_id != project.pk:
        raise BadInput("not in this project", field="agent")
    now = timezone.now()
    try:
        with transaction.atomic():
            quota_reserve(project_id=project.pk, quota="max_call_sessions", now=now)
            session = CallSession.objects.create(
                project=project,
                call_id=call_id,
                agent=agent,
                metadata=metadata,
                created_at=now,
                expires_at=now + agents_settings.CALL_SESSION_TTL,
            )
    except IntegrityError:
        raise SessionExists() from None
    forget_after_commit(project_id=project.pk, call_id=call_id)
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
        forget_after_commit(project_id=session.project_id, call_id=session.call_id)
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


def _in_batches(queryset, batch_size: int, handle) -> None:
    """Call `handle(pks)` on the sessions of `queryset` a batch at a time, each batch in its
    own transaction, until none is left; `handle` must take its batch out of `queryset`."""
    while True:
        with transaction.atomic():
            batch = list(
                queryset.order_by("pk").values_list("pk", "project_id", "call_id")[:batch_size]
            )
            if not batch:
                return
            handle([pk for pk, _, _ in batch])
            for _, project_id, call_id in batch:
                forget_after_commit(project_id=project_id, call_id=call_id)


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
    counts = {"ended": 0, "purged": 0}

    def end(pks):
        counts["ended"] += CallSession.objects.filter(pk__in=pks, ended_at__isnull=True).update(
            ended_at=now, end_reason="expired"
        )
        _revoke_tokens_of(pks, by="cleanup", reason="session expired")

    def purge(pks):
        jtis = ToolToken.objects.filter(session__in=pks).values("issued_id")
        IssuedToken.objects.filter(pk__in=jtis).delete()
        deleted = CallSession.objects.filter(pk__in=pks).delete()[1]
        counts["purged"] += deleted.get(CallSession._meta.label, 0)

    _in_batches(base.filter(ended_at__isnull=True, expires_at__lte=now), batch_size, end)
    cutoff = now - agents_settings.CALL_SESSION_RETENTION
    _in_batches(base.filter(ended_at__lt=cutoff), batch_size, purge)
    return counts["ended"], counts["purged"]
