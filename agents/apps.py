from django.apps import AppConfig


class AgentsConfig(AppConfig):
    """Agents, assistants, rooms, call sessions and their tokens."""

    name = "agents"

    def ready(self):
        # The voice, LiveKit and tool token kinds and the deploy checks register on import;
        # tool-token state cached per process is forgotten on revocation; paths of the seed
        # contracts that reach no view (an unknown path, a body over the limit) answer in
        # the contract's error format; seed_demo's agent, assistant and tool secret; open call
        # sessions count against the project's quota (limits).
        from limits.policy import register_usage
        from tokens.errors import register_error_format
        from tokens.signals import demo_seeded

        from . import checks, kinds, livekit, tooltokens  # noqa: F401  (registration on import)
        from .demo import seed_demo_agents, seed_demo_tool_secret
        from .errors import VATEL_ERRORS, WEB_CALL_ERRORS
        from .selectors import open_call_sessions

        tooltokens.connect_signals()
        register_usage("max_call_sessions", open_call_sessions)
        register_error_format("/v1/", VATEL_ERRORS)
        register_error_format("/web_call/", WEB_CALL_ERRORS)
        demo_seeded.connect(seed_demo_agents, dispatch_uid="agents.demo")
        demo_seeded.connect(seed_demo_tool_secret, dispatch_uid="agents.demo_tool_secret")
