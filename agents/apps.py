from django.apps import AppConfig


class AgentsConfig(AppConfig):
    """Agents, assistants, rooms, call sessions and their tokens (issues 3 and 5)."""

    name = "agents"
