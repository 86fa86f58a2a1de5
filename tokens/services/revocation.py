"""Revoking tokens (one, a token string, or a queryset) and purging expired rows.

Revocation is a timestamp set under a row lock, so concurrent revokes change a row once; the
`tokens_revoked` signal goes out after commit, for live sockets to close in every process.
"""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..conf import roomkey_settings
from ..models import IssuedToken, Project
from ..signals import tokens_revoked
from .registry import InvalidToken, token_decode

# --- Revoking -----------------------------------------------------------------------------


def _announce_revoked(jtis: list[str], project_id) -> None:
    if jtis:
        transaction.on_commit(
            lambda: tokens_revoked.send(
                sender=IssuedToken, jtis=list(jtis), project_id=str(project_id)
            )
        )


def token_revoke(
    *, jti: str, project: Project | None = None, by: str = "", reason: str = ""
) -> bool:
    """Revoke one token. True if this call revoked it; False if it was unknown, of another
    project, or already revoked (idempotent).

    The row lock and the `revoked_at IS NULL` filter make concurrent revokes change the row
    exactly once: the second waits for the first and then finds nothing to update.
    """
    with transaction.atomic():
        qs = IssuedToken.objects.select_for_update().filter(pk=jti, revoked_at__isnull=True)
        if project is not None:
            qs = qs.filter(project=project)
        row = qs.first()
        if row is None:
            return False
        row.revoked_at = timezone.now()
        row.revoked_by = by[:200]
        row.revoke_reason = reason[:500]
        row.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        _announce_revoked([row.jti], row.project_id)
    return True


def token_revoke_raw(raw, *, project: Project, by: str = "", reason: str = "") -> bool:
    """RFC 7009 revocation of a token string: only the caller's own project's tokens."""
    try:
        decoded = token_decode(raw)
    except InvalidToken:
        return False
    if decoded.project_id != str(project.pk):
        return False
    return token_revoke(jti=decoded.jti, project=project, by=by, reason=reason)


def token_revoke_many(*, queryset, by: str = "", reason: str = "") -> int:
    """Revoke every not-yet-revoked token in `queryset`; returns how many this call revoked."""
    revoked = 0
    with transaction.atomic():
        # One global lock order (by primary key), whatever order the caller's queryset has:
        # two overlapping bulk revokes then queue instead of deadlocking. `of=("self",)`
        # keeps joins the caller's filters add from locking projects or API keys.
        rows = list(
            queryset.select_for_update(of=("self",))
            .filter(revoked_at__isnull=True)
            .order_by("pk")
            .values_list("jti", "project_id")
        )
        by_project: dict = {}
        for jti, project_id in rows:
            by_project.setdefault(project_id, []).append(jti)
        now = timezone.now()
        for project_id, jtis in by_project.items():
            for start in range(0, len(jtis), 500):
                chunk = jtis[start : start + 500]
                revoked += IssuedToken.objects.filter(pk__in=chunk, revoked_at__isnull=True).update(
                    revoked_at=now, revoked_by=by[:200], revoke_reason=reason[:500]
                )
            _announce_revoked(jtis, project_id)
    return revoked


def tokens_clear_expired(*, now: datetime | None = None, batch_size: int | None = None) -> int:
    """Delete registry rows expired longer ago than TOKEN_RETENTION, a batch at a time, so a
    large purge never holds one long transaction."""
    cutoff = (now or timezone.now()) - roomkey_settings.TOKEN_RETENTION
    batch_size = batch_size or roomkey_settings.CLEAR_BATCH_SIZE
    deleted = 0
    while True:
        batch = list(
            IssuedToken.objects.filter(expires_at__lt=cutoff).values_list("pk", flat=True)[
                :batch_size
            ]
        )
        if not batch:
            return deleted
        deleted += IssuedToken.objects.filter(pk__in=batch).delete()[0]
