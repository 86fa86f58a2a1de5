"""Demo data for `seed_demo` (receivers of tokens.signals.demo_seeded, connected in apps.py):
an agent and an assistant, and the project's tool secret."""

from django.conf import settings

from . import selectors, services
from .models import Agent, Assistant

DEMO_AGENT = "Demo agent"
DEMO_ASSISTANT = "Demo assistant"


def seed_demo_agents(sender, *, project, **kwargs) -> dict:
    """Once: an agent with a published, active version and an assistant whose templates
    have a {{name}} placeholder. Returns the ids and the project's LiveKit settings."""
    agent, _ = Agent.objects.get_or_create(
        project=project, name=DEMO_AGENT, defaults={"dispatch_name": "demo-agent"}
    )
    version = agent.active_version
    if version is None:
        version = services.agent_version_create(
            agent=agent,
            prompt="You are Roomkey's friendly demo agent. Keep answers short.",
            first_message="Hello! How can I help you today?",
        )
        services.agent_version_publish(version=version)
        version.refresh_from_db()
        services.agent_set_active_version(agent=agent, version=version)
    assistant, _ = Assistant.objects.get_or_create(
        project=project,
        name=DEMO_ASSISTANT,
        defaults={
            "dispatch_name": "demo-assistant",
            "prompt_template": "You are a helpful assistant talking to {{name}}.",
            "first_message_template": "Hi {{name}}, what can I do for you?",
            "preview_metadata": {"name": "Ada"},
        },
    )
    credentials = selectors.livekit_credentials(project=project)
    return {
        "agent_id": str(agent.pk),
        "version_id": str(version.pk),
        "assistant_id": str(assistant.pk),
        "livekit_url": credentials.url or settings.LIVEKIT_URL,
        "livekit_api_key": credentials.api_key,
        "livekit_api_secret": credentials.api_secret,
    }


def seed_demo_tool_secret(sender, *, project, **kwargs) -> dict:
    # The demo prints the raw secret because a signalwire-sdk agent needs it as `secret_key`;
    # seed_demo runs only with DEBUG on.
    return {"tool_secret": services.tool_secret_get_or_create(project=project).secret}
