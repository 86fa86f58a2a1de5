"""The limits' services, one module per concern, re-exported here (`from limits import
services`): `rates` (counting requests, connects, failed authentications and frames) and
`quotas` (per-project quotas, socket slots)."""

from .quotas import (
    PROCESS,
    quota_reserve,
    socket_slot_acquire,
    socket_slot_release,
    socket_slots_renew,
)
from .rates import (
    Admission,
    Check,
    FrameWindow,
    admit,
    admit_async,
    auth_failed,
    credential_check,
    hit,
    refusal,
    reset,
    tightest,
)

__all__ = [
    "PROCESS",
    "Admission",
    "Check",
    "FrameWindow",
    "admit",
    "admit_async",
    "auth_failed",
    "credential_check",
    "hit",
    "quota_reserve",
    "refusal",
    "reset",
    "socket_slot_acquire",
    "socket_slot_release",
    "socket_slots_renew",
    "tightest",
]
