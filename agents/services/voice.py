"""Voice sessions: the session token of seed 003 (`POST /v1/session-token`: a voice-session
JWT for the websocket transport, a LiveKit room and token for webrtc), and the life of a
session on the `/v1/connection` WebSocket."""

import uuid
from dataclasses import dataclass
from datetime import UTC

from django.db import transaction
from django.utils import timezone

from chat import services as chat_services
from tokens import live
from tokens import services as token_services
from tokens.errors import NotFound

from .. import kinds, livekit, selectors
from ..conf import agents_settings
from ..errors import Unprocessable
from ..models import Agent, AgentVersion, VoiceSession, VoiceSessionMessage
from .livekit import livekit_credentials_required, livekit_token_issue, random_suffix, room_create


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
        raise Unprocessable(
            "The version is a draft; only published versions run.", field="version_id"
        )
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
    credentials = livekit_credentials_required(project=project)
    identity = f"user_{random_suffix(12)}"
    attributes = {**ids, **{k: v for k, v in overrides.items() if v is not None}}
    room = room_create(
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


# --- The session on its WebSocket -----------------------------------------------------------


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
    channel's subscribers, after commit, like any chat message. The returned row carries the
    chat message as `chat_message`."""
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
