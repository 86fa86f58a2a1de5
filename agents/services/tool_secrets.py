"""Each project's tool-token secret (the SDK's `secret_key`), and its rotation with a grace
window for the previous one."""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from tokens.models import Project

from .. import toolformat
from ..conf import agents_settings
from ..models import ToolSecret
from ..tooltokens import forget_after_commit


def tool_secret_get_or_create(*, project: Project) -> ToolSecret:
    row = ToolSecret.objects.filter(project=project).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            row = ToolSecret.objects.create(project=project, secret=toolformat.new_secret())
    except IntegrityError:  # made by a concurrent first use
        return ToolSecret.objects.get(project=project)
    forget_after_commit(project_id=project.pk)  # a validation may have cached "no secret"
    return row


@transaction.atomic
def tool_secret_rotate(*, project: Project) -> ToolSecret:
    """A new secret; the current one keeps validating for TOOL_SECRET_GRACE."""
    tool_secret_get_or_create(project=project)
    row = ToolSecret.objects.select_for_update().get(project=project)
    row.previous_secret = row.secret
    row.secret = toolformat.new_secret()
    row.rotated_at = timezone.now()
    row.save(update_fields=["secret", "previous_secret", "rotated_at"])
    forget_after_commit(project_id=project.pk)
    return row


def previous_valid_until(row: ToolSecret) -> datetime | None:
    if not row.previous_secret or row.rotated_at is None:
        return None
    return row.rotated_at + agents_settings.TOOL_SECRET_GRACE
