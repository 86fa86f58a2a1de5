import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from .rates import parse_rate


def validate_rate(value: str) -> None:
    try:
        parse_rate(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _rate_field(what: str):
    return models.CharField(
        max_length=32,
        blank=True,
        validators=[validate_rate],
        help_text=f'{what}, e.g. "600/min" or "20/10s". Empty: the setting\'s default.',
    )


def _quota_field(what: str):
    return models.PositiveIntegerField(
        null=True, blank=True, help_text=f"{what}. Empty: the setting's default."
    )


class ProjectLimits(models.Model):
    """A project's own rate limits and quotas. Every field left empty means the default of
    settings.ROOMKEY_LIMITS. One row per project, made with it; staff change it in the admin,
    and every server process uses a change within PROJECT_CACHE_SECONDS. Quota checks lock
    this row, so two requests of one project cannot both take its last slot."""

    project = models.OneToOneField(
        "tokens.Project", on_delete=models.CASCADE, primary_key=True, related_name="limits"
    )
    issue_rate = _rate_field("Token issuance per API key")
    validate_rate = _rate_field("Tool-token validations (and debug) per API key")
    introspect_rate = _rate_field("Introspections per API key")
    revoke_rate = _rate_field("Revocations per API key")
    chat_rate = _rate_field("Chat API and Fabric requests per API key or chat token")
    api_rate = _rate_field("Other API requests (call sessions, tool secret) per API key")
    relay_request_rate = _rate_field("Requests per relay socket")
    voice_frame_rate = _rate_field("Frames per voice socket")
    max_chat_sockets = _quota_field("Relay sockets open at once")
    max_voice_sockets = _quota_field("Voice sockets open at once")
    max_call_sessions = _quota_field("Open call sessions")
    max_voice_session_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Longest voice session, in seconds: the voice socket closes then (4292), "
        "and no LiveKit token lives longer. Empty: the setting's default.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "project limits"
        verbose_name_plural = "project limits and usage"
        ordering = ["project__name"]

    def __str__(self):
        return f"Limits of {self.project}"


class LiveSocket(models.Model):
    """One open WebSocket holding a slot of its project's concurrent-socket quota.

    Made when the socket authenticates, deleted when it closes (on every exit path of the
    consumer). Its server process renews `lease_until` while it runs; the slots of a process
    that died are not counted once their lease has run out, and are deleted then.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey("tokens.Project", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16)  # "chat" (relay) or "voice"
    process = models.CharField(max_length=64, db_index=True)
    opened_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["project", "kind", "lease_until"], name="livesocket_project_kind")
        ]

    def __str__(self):
        return f"{self.kind} socket {self.id}"
