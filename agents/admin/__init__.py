"""The agents app's admin, one module per concern; importing them registers their ModelAdmins.

Every write goes through agents.services, like the API's. Secrets (LiveKit API secrets, tool
secrets) are never displayed; a rotated tool secret is shown once.
"""

from . import agents, calls, voice  # noqa: F401
