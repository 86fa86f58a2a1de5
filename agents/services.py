"""Writes of the agents app: keyword-only, atomic verbs called by the API, the admin, the
WebSocket consumer and the commands alike."""

import uuid
from dataclasses import dataclass
from datetime import UTC

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from tokens import crypto, live
from tokens import services as token_services
from tokens.kinds import Decoded
from tokens.models import IssuedToken

from . import kinds, livekit, prompts, selectors
from .conf import agents_settings
from .models import Agent, AgentVersion, Room, VoiceSession, VoiceSessionMessage
from .signals import voice_session_message

# ============================================================================================
# Issue 3: voice sessions, web calls, LiveKit tokens
# ============================================================================================


class NotFound(Exception):
    """An unknown object, or another project's: the two are never told apart."""


class Unprocessable(Exception):
    """A request the data model refuses (a draft version, an agent without one, a limit)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class LiveKitNotConfigured(Exception):
    """No LiveKit URL, API key or secret for the project, in its config or the settings."""


class FieldsNotAllowed(Exception):
    def __init__(self, fields: list[str]):
        super().__init__(", ".join(fields))
        self.fields = fields


# --- Agent versions -------------------------------------------------------------------------


@transaction.atomic
def agent_version_create(
    *, agent: Agent, prompt: str = "", first_message: str = "", config: dict | None = None
) -> AgentVersion:
    """The agent's next-numbered draft. The agent row is locked so two creators cannot take
    the same number."""
    Agent.objects.select_for_update().filter(pk=agent.pk).first()
    number = (agent.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    return AgentVersion.objects.create(
        agent=agent,
        number=number,
        prompt=prompt,
        first_message=first_message,
        config=config or {},
    )


def agent_version_publish(*, version: AgentVersion) -> bool:
    """Draft -> published, once; True if this call published it. From then on the version
    is immutable (AgentVersion.save refuses changes)."""
    return bool(
        AgentVersion.objects.filter(pk=version.pk, status=AgentVersion.DRAFT).update(
            status=AgentVersion.PUBLISHED, published_at=timezone.now()
        )
    )


def agent_set_active_version(*, agent: Agent, version: AgentVersion) -> None:
    if version.agent_id != agent.pk:
        raise Unprocessable("The version belongs to another agent.")
    version.refresh_from_db(fields=["status"])
    if not version.is_published:
        raise Unprocessable("Only a published version can be active.")
    Agent.objects.filter(pk=agent.pk).update(active_version=version)
    agent.active_version = version


# --- LiveKit tokens -------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedLiveKit:
    token: str
    row: IssuedToken
    url: str
    room: str
    identity: str


def _random_suffix(chars: int) -> str:
    # Room names and identities are labels, not secrets: a LiveKit token still names its one
    # room. uuid4 is random enough to make collisions (which the unique index catches) rare.
    return uuid.uuid4().hex[:chars]


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
    credentials = credentials or selectors.livekit_credentials(project=project)
    if not credentials.complete:
        raise LiveKitNotConfigured()
    now = timezone.now()
    iat = int(now.timestamp())
    exp = iat + int(agents_settings.LIVEKIT_TOKEN_TTL.total_seconds())
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
        raise livekit.LimitExceeded("token", "The token would be larger than 1 MiB.")
    row = token_services.record_issued(
        project=project,
        decoded=Decoded(
            kind=kinds.LIVEKIT_NAME,
            jti=jti,
            project_id=str(project.pk),
            subject=identity,
            issued_at=iat,
            expires_at=exp,
        ),
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


def _room_create(*, project, prefix: str, **fields) -> Room:
    """A Room named `<prefix>_<8 lowercase hex>`; a name already taken is drawn again."""
    for _ in range(5):
        try:
            with transaction.atomic():
                return Room.objects.create(
                    project=project, name=f"{prefix}_{_random_suffix(8)}", **fields
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


# --- Seed 003: POST /v1/session-token -------------------------------------------------------


@dataclass(frozen=True)
class SessionToken:
    token: str
    transport: str
    room: str | None = None
    identity: str | None = None
    url: str | None = None
    session: VoiceSession | None = None


def _resolve_version(agent: Agent, version_id) -> AgentVersion:
    if version_id is None:
        version = agent.active_version
        if version is None:
            raise Unprocessable("The agent has no active version.", field="agent_id")
    else:
        version = selectors.version_of(agent=agent, version_id=version_id)
        if version is None:
            raise NotFound("Version not found.")
    if not version.is_published:
        raise Unprocessable("The version is a draft; only published versions run.", "version_id")
    return version


def session_token_issue(
    *,
    project,
    agent_id,
    version_id=None,
    transport: str = "websocket",
    prompt: str | None = None,
    first_message: str | None = None,
    api_key=None,
    client_ip: str | None = None,
) -> SessionToken:
    """A voice-session token (websocket) or a LiveKit room and token (webrtc) for an agent
    of `project`, running `version_id` or the agent's active version."""
    agent = selectors.agent_for(project=project, agent_id=agent_id)
    if agent is None:
        raise NotFound("Agent not found.")
    version = _resolve_version(agent, version_id)
    resolved_prompt = version.prompt if prompt is None else prompt
    resolved_first = version.first_message if first_message is None else first_message
    ids = {"agent_id": str(agent.pk), "version_id": str(version.pk)}
    with transaction.atomic():
        if transport == "webrtc":
            return _webrtc_session(
                project=project,
                agent=agent,
                version=version,
                ids=ids,
                overrides={"prompt": prompt, "first_message": first_message},
                resolved={"prompt": resolved_prompt, "first_message": resolved_first},
                api_key=api_key,
                client_ip=client_ip,
            )
        session_id = uuid.uuid4()
        issued = token_services.token_issue(
            project=project,
            kind=kinds.VOICE.name,
            subject=str(session_id),
            ttl=agents_settings.VOICE_SESSION_TTL,
            grants={**ids, "session_id": str(session_id)},
            resource=f"voicesession:{session_id}",
            api_key=api_key,
            client_ip=client_ip,
            claims={"aud": kinds.VOICE_AUDIENCE, "sid": str(session_id), **ids},
        )
        session = VoiceSession.objects.create(
            id=session_id,
            project=project,
            jti=issued.row.jti,
            agent=agent,
            version=version,
            prompt_override=prompt,
            first_message_override=first_message,
            expires_at=issued.row.expires_at,
        )
    return SessionToken(token=issued.token, transport="websocket", session=session)


def _webrtc_session(
    *, project, agent, version, ids, overrides, resolved, api_key, client_ip
) -> SessionToken:
    credentials = selectors.livekit_credentials(project=project)
    if not credentials.complete:
        raise LiveKitNotConfigured()
    identity = f"user_{_random_suffix(12)}"
    attributes = {**ids, **{k: v for k, v in overrides.items() if v is not None}}
    room = _room_create(
        project=project,
        prefix=str(agent.pk),
        agent=agent,
        version=version,
        metadata={"transport": "webrtc", "identity": identity},
    )
    issued = livekit_token_issue(
        project=project,
        identity=identity,
        room=room.name,
        attributes=attributes,
        dispatches=[
            livekit.dispatch(
                agent.dispatch_name, {**ids, "room": room.name, "identity": identity, **resolved}
            )
        ],
        grants=ids,
        api_key=api_key,
        client_ip=client_ip,
        fields={"attributes": "prompt", "dispatch": "prompt"},
        credentials=credentials,
        sources=livekit.VOICE_SOURCES,
    )
    return SessionToken(
        token=issued.token,
        transport="webrtc",
        room=room.name,
        identity=identity,
        url=credentials.url,
    )


# --- Seed 004: POST /web_call/get_token -----------------------------------------------------


@dataclass(frozen=True)
class WebCall:
    room: Room
    token: str


def web_call_issue(
    *, project, assistant_id, metadata: dict, api_key=None, client_ip: str | None = None
) -> WebCall:
    """A LiveKit room `<assistant_id>_<8 hex>` and a participant token that dispatches the
    assistant with its templates filled from `metadata`."""
    assistant = selectors.assistant_for(project=project, assistant_id=assistant_id)
    if assistant is None:
        raise NotFound("Assistant not found.")
    credentials = selectors.livekit_credentials(project=project)
    if not credentials.complete:
        raise LiveKitNotConfigured()
    # A character is at least a byte: past this many characters the dispatch metadata is
    # over LiveKit's limit whatever they are (the exact check, in bytes, comes later).
    limit = livekit.METADATA_MAX_BYTES
    try:
        prompt = prompts.render(assistant.prompt_template, metadata, max_chars=limit)
        first = prompts.render(assistant.first_message_template, metadata, max_chars=limit)
    except prompts.TooLong:
        raise Unprocessable(
            "The assistant's prompt filled with this metadata is too large.", "metadata"
        ) from None
    identity = f"web_{_random_suffix(12)}"
    with transaction.atomic():
        room = _room_create(
            project=project, prefix=str(assistant.pk), assistant=assistant, metadata=metadata
        )
        try:
            issued = livekit_token_issue(
                project=project,
                identity=identity,
                room=room.name,
                dispatches=[
                    livekit.dispatch(
                        assistant.dispatch_name,
                        {
                            "assistant_id": str(assistant.pk),
                            "room": room.name,
                            "prompt": prompt,
                            "first_message": first,
                            "metadata": metadata,
                        },
                    )
                ],
                grants={"assistant_id": str(assistant.pk)},
                api_key=api_key,
                client_ip=client_ip,
                fields={"dispatch": "metadata"},
                credentials=credentials,
                sources=livekit.VOICE_SOURCES,
            )
        except livekit.LimitExceeded as exc:
            raise Unprocessable(
                "The assistant's prompt filled with this metadata is too large.", exc.field
            ) from None
    return WebCall(room=room, token=issued.token)


# --- LiveKit token source -------------------------------------------------------------------

TOKEN_SOURCE_LABELS = {
    "identity": "participant_identity",
    "name": "participant_name",
    "metadata": "participant_metadata",
    "attributes": "participant_attributes",
    "room": "room_name",
    "room_config": "room_config",
    "dispatch": "room_config",
}


def token_source_issue(
    *, project, request: dict, api_key=None, client_ip: str | None = None
) -> IssuedLiveKit:
    """LiveKit's token-source contract: `request` holds the fields the client sent (already
    shape-checked). Fields the project does not let clients set raise FieldsNotAllowed; an
    agent dispatch must name one of the project's agents or assistants."""
    config = selectors.livekit_config(project=project)
    allowed = selectors.token_source_fields(config=config)
    refused = sorted(name for name in request if name not in allowed)
    if refused:
        raise FieldsNotAllowed(refused)
    credentials = selectors.livekit_credentials(project=project, config=config)
    if not credentials.complete:
        raise LiveKitNotConfigured()
    dispatches = (request.get("room_config") or {}).get("agents") or []
    if dispatches:
        known = selectors.dispatch_names(project=project)
        unknown = sorted({d["agentName"] for d in dispatches} - known)
        if unknown:
            raise Unprocessable(
                f"room_config names agents this project does not have: {', '.join(unknown)}.",
                "room_config",
            )
    return livekit_token_issue(
        project=project,
        identity=request.get("participant_identity") or f"participant_{_random_suffix(12)}",
        room=request.get("room_name") or f"room_{_random_suffix(12)}",
        name=request.get("participant_name") or "",
        metadata=request.get("participant_metadata") or "",
        attributes=request.get("participant_attributes") or None,
        dispatches=dispatches,
        grants={"source": "token-source"},
        api_key=api_key,
        client_ip=client_ip,
        fields=TOKEN_SOURCE_LABELS,
        credentials=credentials,
    )


# --- Voice sessions (the /v1/connection WebSocket) ------------------------------------------


def voice_session_connect(*, session: VoiceSession) -> bool:
    """issued -> connected, once: a session has one socket. False if it is connected or
    ended already (the conditional UPDATE makes two racing sockets get one True)."""
    now = timezone.now()
    done = VoiceSession.objects.filter(pk=session.pk, status=VoiceSession.ISSUED).update(
        status=VoiceSession.CONNECTED, connected_at=now
    )
    if done:
        session.status, session.connected_at = VoiceSession.CONNECTED, now
    return bool(done)


def voice_session_finish(*, session: VoiceSession, reason: str) -> bool:
    """Record that the session ended and why; the first reason recorded stays."""
    now = timezone.now()
    done = (
        VoiceSession.objects.filter(pk=session.pk)
        .exclude(status=VoiceSession.ENDED)
        .update(status=VoiceSession.ENDED, ended_at=now, end_reason=reason[:200])
    )
    if done:
        session.status, session.ended_at, session.end_reason = VoiceSession.ENDED, now, reason
    return bool(done)


def voice_session_end(*, session: VoiceSession, by: str = "", reason: str = "ended") -> bool:
    """End a session from outside (admin, API): its socket closes with CLOSE_ENDED in every
    process, and its token is revoked so it cannot connect again."""
    with transaction.atomic():
        ended = voice_session_finish(session=session, reason=f"{reason} by {by}" if by else reason)
        # Registered before the revocation's own close, so the socket hears "ended" first.
        group = live.resource_group("voicesession", session.pk)
        transaction.on_commit(
            lambda: live.close_group(group, code=live.CLOSE_ENDED, reason="session ended")
        )
        token_services.token_revoke(jti=session.jti, by=by or "agents", reason=reason)
    return ended


def voice_message_store(*, session: VoiceSession, text: str) -> VoiceSessionMessage:
    with transaction.atomic():
        message = VoiceSessionMessage.objects.create(session=session, text=text)
        # The hook for chat (issue 4): a receiver writes the message to the session's
        # conversation. Sent after commit so it never sees a rolled-back message.
        transaction.on_commit(
            lambda: voice_session_message.send(
                sender=VoiceSession, session=session, message=message
            )
        )
    return message


def _override_or(override: str | None, default: str) -> str:
    return default if override is None else override


def voice_session_started_event(session: VoiceSession) -> dict:
    """The first event of a voice socket: the session and what the agent will run."""
    version = session.version
    return {
        "type": "session.started",
        "session_id": str(session.pk),
        "agent": {"id": str(session.agent_id), "name": session.agent.name},
        "version": {"id": str(version.pk), "number": version.number},
        "prompt": _override_or(session.prompt_override, version.prompt),
        "first_message": _override_or(session.first_message_override, version.first_message),
        "expires_at": int(session.expires_at.timestamp()),
        "expires_at_iso": session.expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
