"""Reads, tenant-scoped: another project's object is not found, exactly like an unknown one."""

from dataclasses import dataclass, field

from django.conf import settings

from tokens.models import Project
from tokens.selectors import as_uuid

from .models import Agent, AgentVersion, Assistant, CallSession, LiveKitConfig, VoiceSession

# --- Agents, assistants, LiveKit credentials, voice sessions --------------------------------


def agent_for(*, project, agent_id) -> Agent | None:
    pk = as_uuid(agent_id)
    if pk is None:
        return None
    return Agent.objects.filter(project=project, pk=pk).select_related("active_version").first()


def version_of(*, agent: Agent, version_id) -> AgentVersion | None:
    """A version of `agent` (of any status), or None for an unknown or other agent's one."""
    pk = as_uuid(version_id)
    if pk is None:
        return None
    return AgentVersion.objects.filter(agent=agent, pk=pk).first()


def assistant_for(*, project, assistant_id) -> Assistant | None:
    pk = as_uuid(assistant_id)
    if pk is None:
        return None
    return Assistant.objects.filter(project=project, pk=pk).first()


def dispatch_names(*, project) -> set[str]:
    """LiveKit agent names the project's agents and assistants run under."""
    return set(Agent.objects.filter(project=project).values_list("dispatch_name", flat=True)) | set(
        Assistant.objects.filter(project=project).values_list("dispatch_name", flat=True)
    )


def voice_session_by_jti(jti: str) -> VoiceSession | None:
    return (
        VoiceSession.objects.select_related("agent", "version", "project").filter(jti=jti).first()
    )


@dataclass(frozen=True)
class LiveKitCredentials:
    url: str
    api_key: str
    # Not in repr: tracebacks (Django's debug page, error emails) show local variables, and
    # their filter goes by variable name, which `credentials` does not match.
    api_secret: str = field(repr=False)

    @property
    def complete(self) -> bool:
        return bool(self.url and self.api_key and self.api_secret)


def livekit_config(*, project) -> LiveKitConfig | None:
    return LiveKitConfig.objects.filter(project=project).first()


def livekit_credentials(*, project, config: LiveKitConfig | None = None) -> LiveKitCredentials:
    """The project's own LiveKit server and key pair, else the LIVEKIT_* settings.

    Key and secret come as a pair: a project with its own key but no secret of its own is
    incomplete rather than signed with the shared secret. Read at call time.
    """
    config = config if config is not None else livekit_config(project=project)
    url = (config.url if config else "") or settings.LIVEKIT_URL
    if config is not None and (config.api_key or config.api_secret):
        return LiveKitCredentials(url=url, api_key=config.api_key, api_secret=config.api_secret)
    return LiveKitCredentials(
        url=url, api_key=settings.LIVEKIT_API_KEY, api_secret=settings.LIVEKIT_API_SECRET
    )


def token_source_fields(*, config: LiveKitConfig | None) -> set[str]:
    if config is None:
        return set(LiveKitConfig.DEFAULT_TOKEN_SOURCE_FIELDS)
    return set(config.token_source_fields or [])


# --- Call sessions ------------------------------------------------------------------------


def call_sessions_for(*, project: Project):
    return CallSession.objects.filter(project=project)


def call_session_get(*, project: Project, call_id: str) -> CallSession | None:
    return call_sessions_for(project=project).filter(call_id=call_id).first()


def open_call_sessions(now):
    """Every project's open call sessions (not ended, not expired): what counts against the
    max_call_sessions quota."""
    return CallSession.objects.filter(ended_at__isnull=True, expires_at__gt=now)
