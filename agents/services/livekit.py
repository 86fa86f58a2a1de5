"""Issuing LiveKit access tokens (their format and limits are agents.livekit's), and the
rooms Roomkey creates for web calls and WebRTC sessions."""

import logging
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from limits.policy import voice_session_max_seconds
from tokens import crypto
from tokens import services as token_services
from tokens.models import IssuedToken

from .. import livekit, selectors
from ..conf import agents_settings
from ..errors import LimitExceeded, LiveKitNotConfigured
from ..models import Room
from .registry import record_minted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IssuedLiveKit:
    token: str
    row: IssuedToken
    url: str
    room: str
    identity: str


def random_suffix(chars: int) -> str:
    # Room names and identities are labels, not secrets: a LiveKit token still names its one
    # room. uuid4 is random enough to make collisions (which the unique index catches) rare.
    return uuid.uuid4().hex[:chars]


def livekit_credentials_required(*, project, config=None) -> selectors.LiveKitCredentials:
    """The project's LiveKit credentials, or LiveKitNotConfigured when any part is missing
    (logged: only an operator can fix it)."""
    credentials = selectors.livekit_credentials(project=project, config=config)
    if not credentials.complete:
        log.error("LiveKit is not configured for project %s", project.pk)
        raise LiveKitNotConfigured()
    return credentials


def livekit_token_issue(
    *,
    project,
    identity: str,
    room: str,
    name: str = "",
    metadata: str = "",
    attributes: dict[str, str] | None = None,
    dispatches: list[dict] | None = None,
    grants: dict | None = None,
    api_key=None,
    client_ip: str | None = None,
    fields: dict[str, str] | None = None,
    credentials: selectors.LiveKitCredentials | None = None,
    sources: list[str] | None = None,
) -> IssuedLiveKit:
    """A LiveKit participant token for `identity` in `room`, and its registry row.

    LiveKit's limits are checked first (LimitExceeded). `grants` adds to what the row records
    (agent, version or assistant); the video grant is always the join grant of `room`.
    """
    livekit.check_limits(
        identity=identity,
        room=room,
        name=name,
        metadata=metadata,
        attributes=attributes,
        dispatches=dispatches,
        fields=fields,
    )
    credentials = credentials or livekit_credentials_required(project=project)
    iat = int(timezone.now().timestamp())
    # Never longer than the project's longest voice session.
    longest = voice_session_max_seconds(project.pk)
    ttl = int(agents_settings.LIVEKIT_TOKEN_TTL.total_seconds())
    exp = iat + (ttl if longest is None else min(ttl, longest))
    jti = crypto.new_jti()
    claims = livekit.access_token_claims(
        api_key=credentials.api_key,
        identity=identity,
        room=room,
        jti=jti,
        iat=iat,
        exp=exp,
        name=name,
        metadata=metadata,
        attributes=attributes,
        dispatches=dispatches,
        sources=sources,
    )
    token = crypto.jwt_encode(
        claims,
        secret=credentials.api_secret.encode(),
        alg=livekit.ALGORITHM,
        headers={"typ": "JWT"},
    )
    if len(token) > livekit.TOKEN_MAX_BYTES:
        raise LimitExceeded("The token would be larger than 1 MiB.", field="token")
    row = record_minted(
        project=project,
        kind=livekit.KIND,
        jti=jti,
        subject=identity,
        issued_at=iat,
        expires_at=exp,
        grants={
            **(grants or {}),
            "video": claims["video"],
            "livekit_api_key": credentials.api_key,
            "attributes": sorted(attributes or {}),
            "dispatch": [d["agentName"] for d in dispatches or []],
        },
        resource=room,
        api_key=api_key,
        client_ip=client_ip,
    )
    return IssuedLiveKit(token=token, row=row, url=credentials.url, room=room, identity=identity)


def room_create(*, project, prefix: str, **fields) -> Room:
    """A Room named `<prefix>_<8 lowercase hex>`; a name already taken is drawn again."""
    for _ in range(5):
        try:
            with transaction.atomic():
                return Room.objects.create(
                    project=project, name=f"{prefix}_{random_suffix(8)}", **fields
                )
        except IntegrityError:
            continue
    raise RuntimeError("could not find a free room name")


def room_end(*, room: Room, by: str = "", reason: str = "room ended") -> int:
    """Mark the room ended and revoke every token issued for it (any kind naming the room as
    its resource); returns how many tokens this call revoked.

    LiveKit checks a token when a participant joins, so this stops new joins and rejoins with
    those tokens; participants already in the room stay until LiveKit removes them.
    """
    with transaction.atomic():
        Room.objects.filter(pk=room.pk, ended_at__isnull=True).update(ended_at=timezone.now())
        revoked = token_services.token_revoke_many(
            queryset=IssuedToken.objects.filter(project_id=room.project_id, resource=room.name),
            by=by,
            reason=reason,
        )
    room.refresh_from_db(fields=["ended_at"])
    return revoked
