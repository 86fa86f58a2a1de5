"""Reads, tenant-scoped where a tenant is involved."""

import uuid

from .models import IssuedToken, Project

DEMO_PROJECT_NAME = "Demo"


def demo_project() -> Project | None:
    return Project.objects.filter(name=DEMO_PROJECT_NAME).first()


def project_by_id_or_name(value: str) -> Project | None:
    try:
        return Project.objects.get(pk=uuid.UUID(value))
    except (ValueError, Project.DoesNotExist):
        return Project.objects.filter(name=value).first()


def issued_tokens_for(*, project: Project):
    return IssuedToken.objects.filter(project=project)
