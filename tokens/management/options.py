"""What several management commands read from their options the same way."""

from django.core.management.base import CommandError

from tokens.models import Project
from tokens.selectors import project_by_id_or_name


def project_option(value: str) -> Project:
    """The project a command's --project names (its id or name); CommandError for none."""
    project = project_by_id_or_name(value)
    if project is None:
        raise CommandError(f"No project {value!r}.")
    return project
