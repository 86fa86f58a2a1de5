"""Receivers the app connects in LimitsConfig.ready()."""

from . import policy


def project_saved(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        from .models import ProjectLimits

        ProjectLimits.objects.get_or_create(project=instance)


def limits_saved(sender, instance, **kwargs):
    policy.forget(instance.pk)
