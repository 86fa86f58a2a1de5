"""Agent versions, and revoking every token issued for an agent or an assistant."""

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from tokens import services as token_services
from tokens.models import IssuedToken

from ..errors import Unprocessable
from ..models import Agent, AgentVersion, Assistant


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
