from django.apps import AppConfig


class LimitsConfig(AppConfig):
    """Rate limits per API key, token, address and socket; quotas per project; the admin page
    of each project's limits and usage."""

    name = "limits"

    def ready(self):
        # The API views' rate limits (a request guard every view runs); settings reload on
        # setting_changed; every project gets its limits row; a change of one reaches this
        # process's cache at once (others within PROJECT_CACHE_SECONDS).
        from django.db.models.signals import post_save

        from tokens.guards import register_request_guard
        from tokens.models import Project

        from . import conf, signals  # noqa: F401  (conf: connects the setting_changed reloader)
        from .http import RateLimitGuard
        from .models import ProjectLimits

        register_request_guard(RateLimitGuard())
        post_save.connect(signals.project_saved, sender=Project, dispatch_uid="limits.project")
        post_save.connect(signals.limits_saved, sender=ProjectLimits, dispatch_uid="limits.forget")
