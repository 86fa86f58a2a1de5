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
        # Issue 3: the voice and LiveKit token kinds, the deploy checks, the seed endpoints'
        # oversize-body answers, and the demo data.
        from tokens.asgi import register_oversize_answer
        from tokens.signals import demo_seeded

        from . import checks, kinds  # noqa: F401  (registration on import)
        from .demo import seed_demo_agents
        from .views import oversize_session_token, oversize_web_call

        register_oversize_answer("/v1/session-token", oversize_session_token)
        register_oversize_answer("/web_call/get_token", oversize_web_call)
        demo_seeded.connect(seed_demo_agents, dispatch_uid="agents.demo")
