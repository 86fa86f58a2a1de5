"""Reads, tenant-scoped where a tenant is involved."""

import uuid

from .models import IssuedToken, Project

DEMO_PROJECT_NAME = "Demo"


def as_uuid(value) -> uuid.UUID | None:
    """An id from a URL or a body as a UUID, or None when it is not one: callers answer that
    with the same "not found" as an unknown id, never a 500."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def demo_project() -> Project | None:
    return Project.objects.filter(name=DEMO_PROJECT_NAME).first()


def project_by_id_or_name(value: str) -> Project | None:
    try:
        return Project.objects.get(pk=uuid.UUID(value))
    except (ValueError, Project.DoesNotExist):
        return Project.objects.filter(name=value).first()


def issued_tokens_for(*, project: Project):
    return IssuedToken.objects.filter(project=project)
