"""Quotas per project: counted in the database under a lock of the project's ProjectLimits
row, so they hold across server processes and concurrent requests; and the quota slots of open
sockets (LiveSocket rows with a lease their process renews)."""

import datetime
import os
import secrets
import socket

from django.db import connection, transaction
from django.utils import timezone

from .. import policy
from ..conf import limits_settings
from ..errors import QuotaExceeded
from ..models import LiveSocket, ProjectLimits

# --- Quotas --------------------------------------------------------------------------------


def _lock_project(project_id) -> None:
    # The ProjectLimits row is locked only here, so concurrent quota checks of one project
    # queue on it without blocking anything else of the project.
    ProjectLimits.objects.select_for_update().get_or_create(project_id=project_id)


def quota_reserve(*, project_id, quota: str, now=None) -> None:
    """Inside the caller's transaction, which then creates the row that takes the slot:
    raises QuotaExceeded when the project's `quota` (a counted one, policy.register_usage)
    is in use already."""
    limit = policy.quota(quota, project_id)
    if limit is None:
        return
    if not connection.in_atomic_block:
        raise RuntimeError("quota_reserve must run inside the transaction that takes the slot")
    _lock_project(project_id)
    used = policy.usage_rows(quota, now or timezone.now()).filter(project_id=project_id).count()
    if used >= limit:
        raise QuotaExceeded(policy.QUOTAS[quota], limit)


# --- Live sockets --------------------------------------------------------------------------

# This server process, as its LiveSocket rows name it.
PROCESS = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"

SOCKET_QUOTAS = {"chat": "max_chat_sockets", "voice": "max_voice_sockets"}


def _lease_end(now) -> datetime.datetime:
    return now + datetime.timedelta(seconds=limits_settings.SOCKET_LEASE_SECONDS)


@transaction.atomic
def socket_slot_acquire(*, project_id, kind: str) -> LiveSocket:
    """A slot of the project's concurrent-socket quota for a socket of `kind` ("chat",
    "voice"), or QuotaExceeded."""
    now = timezone.now()
    quota_reserve(project_id=project_id, quota=SOCKET_QUOTAS[kind], now=now)
    return LiveSocket.objects.create(
        project_id=project_id,
        kind=kind,
        process=PROCESS,
        opened_at=now,
        lease_until=_lease_end(now),
    )


def socket_slot_release(slot_id) -> None:
    LiveSocket.objects.filter(pk=slot_id).delete()


def socket_slots_renew() -> int:
    """Renew the lease of every slot this process holds; delete slots whose lease ran out
    (their process died). Returns how many were renewed."""
    now = timezone.now()
    renewed = LiveSocket.objects.filter(process=PROCESS).update(lease_until=_lease_end(now))
    LiveSocket.objects.filter(lease_until__lte=now).delete()
    return renewed


def _live_sockets(kind):
    return lambda now: LiveSocket.objects.filter(kind=kind, lease_until__gt=now)


policy.register_usage("max_chat_sockets", _live_sockets("chat"))
policy.register_usage("max_voice_sockets", _live_sockets("voice"))
