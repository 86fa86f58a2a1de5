from django.apps import AppConfig


class AgentsConfig(AppConfig):
    """Agents, assistants, rooms, call sessions and their tokens (issues 3 and 5)."""

    name = "agents"

    def ready(self):
        # Issue 5: registers the `tool` token kind; forgets cached token state on revocation;
        # adds `tool_secret` to seed_demo's output.
        from . import tooltokens
        from .receivers import connect_call_session_receivers

        tooltokens.connect_signals()
        connect_call_session_receivers()
