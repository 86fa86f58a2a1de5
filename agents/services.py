"""Writes of the agents app: keyword-only, atomic verbs called by the API, the admin, the
WebSocket consumer and the commands alike."""

import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from chat import services as chat_services
from tokens import crypto, live
from tokens import services as token_services
from tokens.conf import roomkey_settings
from tokens.kinds import Decoded
from tokens.models import ApiKey, IssuedToken, Project
from tokens.services import record_issued, token_revoke_many

from . import kinds, livekit, prompts, selectors, tooltokens
from .conf import agents_settings
from .models import (
    Agent,
    AgentVersion,
    Assistant,
    CallSession,
    Room,
    ToolSecret,
    ToolToken,
    VoiceSession,
    VoiceSessionMessage,
)
from .signals import voice_session_message


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


class RoomEnded(Exception):
    """A token was asked for a room that has been ended (its tokens are revoked)."""


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


def agent_tokens_revoke(*, agent: Agent, by: str = "", reason: str = "agent revoked") -> int:
    """Revoke every voice-session and LiveKit token issued for `agent`; its
    live voice sockets close (CLOSE_REVOKED) in every process. Returns how many this revoked."""
    return token_services.token_revoke_many(
        queryset=IssuedToken.objects.filter(
            project_id=agent.project_id, grants__agent_id=str(agent.pk)
        ),
        by=by,
        reason=reason,
    )


def assistant_tokens_revoke(
    *, assistant: Assistant, by: str = "", reason: str = "assistant revoked"
) -> int:
    """Revoke every web-call token issued for `assistant`; returns how many this revoked."""
    return token_services.token_revoke_many(
        queryset=IssuedToken.objects.filter(
            project_id=assistant.project_id, grants__assistant_id=str(assistant.pk)
        ),
        by=by,
        reason=reason,
    )


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
    agent dispatch must name one of the project's agents or assistants; a room Roomkey made
    for another project is NotFound, an ended one RoomEnded."""
    config = selectors.livekit_config(project=project)
    allowed = selectors.token_source_fields(config=config)
    refused = sorted(name for name in request if name not in allowed)
    if refused:
        raise FieldsNotAllowed(refused)
    credentials = selectors.livekit_credentials(project=project, config=config)
    if not credentials.complete:
        raise LiveKitNotConfigured()
    room_name = request.get("room_name")
    if room_name:
        # A room Roomkey made for another project (a web call, a WebRTC session) is not this
        # caller's to join, even where both projects share the LiveKit server of the settings;
        # an ended room takes no new participants.
        room = Room.objects.filter(name=room_name).only("project_id", "ended_at").first()
        if room is not None and room.project_id != project.pk:
            raise NotFound("Room not found.")
        if room is not None and room.ended_at is not None:
            raise RoomEnded()
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
        room=room_name or f"room_{_random_suffix(12)}",
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
    """Record that the session ended and why; the first reason recorded stays.

    A session has one socket, so its token can never be used again: it is revoked too (unless
    it expired), and introspection says so instead of "active" until its expiry."""
    now = timezone.now()
    with transaction.atomic():
        done = (
            VoiceSession.objects.filter(pk=session.pk)
            .exclude(status=VoiceSession.ENDED)
            .update(status=VoiceSession.ENDED, ended_at=now, end_reason=reason[:200])
        )
        if done and reason != "expired":
            token_services.token_revoke(jti=session.jti, by="roomkey", reason="session ended")
    if done:
        session.status, session.ended_at, session.end_reason = VoiceSession.ENDED, now, reason
    return bool(done)


def voice_session_end(*, session: VoiceSession, by: str = "", reason: str = "ended") -> bool:
    """End a session from outside (admin, API): its socket closes with CLOSE_ENDED in every
    process, and its token is revoked so it cannot connect again."""
    with transaction.atomic():
        # Registered before the revocation's own close, so the socket hears "ended" first.
        group = live.resource_group("voicesession", session.pk)
        transaction.on_commit(
            lambda: live.close_group(group, code=live.CLOSE_ENDED, reason="session ended")
        )
        token_services.token_revoke(jti=session.jti, by=by or "agents", reason=reason)
        ended = voice_session_finish(session=session, reason=f"{reason} by {by}" if by else reason)
    return ended


def voice_session_channel(session: VoiceSession) -> str:
    """The chat channel (address name) holding a voice session's conversation."""
    return f"voice-{session.pk}"


def voice_message_store(*, session: VoiceSession, text: str) -> VoiceSessionMessage:
    """Keep a message the client typed on the voice socket, on the session and in the
    session's chat conversation (channel `voice-<session id>`), which fans it out to that
    channel's subscribers like any chat message. The returned row carries the chat message
    as `chat_message`."""
    with transaction.atomic():
        message = VoiceSessionMessage.objects.create(session=session, text=text)
        conversation = chat_services.conversation_for_name(
            project=session.project, name=voice_session_channel(session)
        )
        message.chat_message = chat_services.message_send(
            conversation=conversation,
            member_id=f"voice-session-{session.pk}",
            user_name="caller",
            text=text,
            details={"voice_session_id": str(session.pk), "agent_id": str(session.agent_id)},
        )
        # For other listeners; sent after commit so none sees a rolled-back message.
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


# --- Call sessions and tool tokens (issue 5, seed 001) ------------------------------------

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
    return len(livekit.compact_json(metadata))


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
