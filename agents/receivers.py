"""Signal receivers of the agents app."""

# --- Call sessions and tool tokens (issue 5) ----------------------------------------------


def _demo_tool_secret(sender, project, **kwargs) -> dict:
    # The demo prints the raw secret because a signalwire-sdk agent needs it as `secret_key`;
    # seed_demo runs only with DEBUG on.
    from .services import tool_secret_get_or_create

    return {"tool_secret": tool_secret_get_or_create(project=project).secret}


def connect_call_session_receivers() -> None:
    from tokens.signals import demo_seeded

    demo_seeded.connect(_demo_tool_secret, dispatch_uid="agents.demo_tool_secret")
