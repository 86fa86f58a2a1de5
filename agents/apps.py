from django.apps import AppConfig


class AgentsConfig(AppConfig):
    """Agents, assistants, rooms, call sessions and their tokens (issues 3 and 5)."""

    name = "agents"

    def ready(self):
        # The voice, LiveKit and tool token kinds and the deploy checks register on import;
        # tool-token state cached per process is forgotten on revocation; the seed
        # endpoints' oversize-body answers; seed_demo's agent, assistant and tool secret.
        from tokens.asgi import register_oversize_answer
        from tokens.signals import demo_seeded

        from . import checks, kinds, tooltokens  # noqa: F401  (registration on import)
        from .demo import seed_demo_agents, seed_demo_tool_secret
        from .views import oversize_session_token, oversize_web_call

        tooltokens.connect_signals()
        register_oversize_answer("/v1/session-token", oversize_session_token)
        register_oversize_answer("/web_call/get_token", oversize_web_call)
        demo_seeded.connect(seed_demo_agents, dispatch_uid="agents.demo")
        demo_seeded.connect(seed_demo_tool_secret, dispatch_uid="agents.demo_tool_secret")
