import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from tokens.models import Project


def _default_token_source_fields():
    return list(LiveKitConfig.DEFAULT_TOKEN_SOURCE_FIELDS)


class Agent(models.Model):
    """A voice agent of a project: a LiveKit dispatch name and a history of versions.

    The agent's `active_version` is what a session token uses when the caller names no version;
    it must be a published version of this agent.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=200)
    dispatch_name = models.CharField(
        "LiveKit dispatch name", max_length=256, help_text="The agent worker's agent_name."
    )
    active_version = models.ForeignKey(
        "AgentVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="agent_name_unique_in_project")
        ]

    def __str__(self):
        return self.name


class AgentVersion(models.Model):
    """One numbered version of an agent's prompt, first message and config.

    A draft can be edited; once published it is immutable, so a session that named it always
    ran the same prompt.
    """

    DRAFT = "draft"
    PUBLISHED = "published"
    STATUS_CHOICES = [(DRAFT, "Draft"), (PUBLISHED, "Published")]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    prompt = models.TextField(blank=True)
    first_message = models.TextField(blank=True)
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=DRAFT)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    published_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["agent", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["agent", "number"], name="agent_version_number_unique")
        ]

    def __str__(self):
        return f"{self.agent} v{self.number} ({self.status})"

    def save(self, *args, **kwargs):
        # Published is final: services publish with an UPDATE, and nothing saves over one.
        if (
            not self._state.adding
            and AgentVersion.objects.filter(pk=self.pk, status=self.PUBLISHED).exists()
        ):
            raise ValidationError("A published version cannot be changed.")
        super().save(*args, **kwargs)

    @property
    def is_published(self) -> bool:
        return self.status == self.PUBLISHED


class Assistant(models.Model):
    """A web-call assistant: prompt and first-message templates with `{{placeholder}}` slots,
    filled from the caller's metadata when a web call starts."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assistants")
    name = models.CharField(max_length=200)
    prompt_template = models.TextField(blank=True)
    first_message_template = models.TextField(blank=True)
    dispatch_name = models.CharField("LiveKit dispatch name", max_length=256)
    # Staff's sample values for the admin's rendered preview; never used for real calls.
    preview_metadata = models.JSONField(
        "sample metadata",
        default=dict,
        blank=True,
        help_text='Sample web-call metadata for the preview, e.g. {"name": "Ada"}.',
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Room(models.Model):
    """A LiveKit room Roomkey created for a WebRTC session or a web call.

    Ending a room revokes every token issued for it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=256, unique=True)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rooms")
    agent = models.ForeignKey(Agent, on_delete=models.SET_NULL, null=True, blank=True)
    version = models.ForeignKey(AgentVersion, on_delete=models.SET_NULL, null=True, blank=True)
    assistant = models.ForeignKey(Assistant, on_delete=models.SET_NULL, null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    ended_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "-created_at"], name="room_project_recent")]

    def __str__(self):
        return self.name


class VoiceSession(models.Model):
    """A websocket-transport voice session: made when its token is issued, connected when the
    token's socket opens, ended when the socket closes, the token is revoked or it expires.

    `jti` names the session's token in the IssuedToken registry; the token itself is never kept.
    """

    ISSUED = "issued"
    CONNECTED = "connected"
    ENDED = "ended"
    STATUS_CHOICES = [(ISSUED, "Issued"), (CONNECTED, "Connected"), (ENDED, "Ended")]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="voice_sessions")
    jti = models.CharField("token JTI", max_length=64, unique=True)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="voice_sessions")
    version = models.ForeignKey(AgentVersion, on_delete=models.PROTECT, related_name="+")
    # NULL: no override (the version's text runs); "" is an override to nothing.
    prompt_override = models.TextField(null=True, blank=True)  # noqa: DJ001
    first_message_override = models.TextField(null=True, blank=True)  # noqa: DJ001
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=ISSUED)
    end_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    connected_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["project", "-created_at"], name="voicesession_project_recent")
        ]

    def __str__(self):
        return f"{self.agent} session {self.id}"


# --- Call sessions and tool tokens (seed 001) ---------------------------------------------


class CallSession(models.Model):
    """One call, as signalwire-sdk's SessionManager names it: a `call_id` with its metadata and
    the tool tokens issued for it.

    Made by `create_session` (or POST /api/v1/sessions); its tool tokens validate only while it
    is open. It ends when ended through the API, the admin or the facade, or when `cleanup`
    finds it past `expires_at`; ending revokes its tokens. Ended sessions are deleted, with the
    registry rows of their tokens, by `cleanup` once CALL_SESSION_RETENTION has passed.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="call_sessions")
    call_id = models.CharField("call id", max_length=256)
    agent = models.ForeignKey(
        Agent, on_delete=models.SET_NULL, null=True, blank=True, related_name="call_sessions"
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True, editable=False, db_index=True)
    end_reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "call_id"], name="call_session_id_unique_in_project"
            )
        ]

    def __str__(self):
        return self.call_id

    def status(self, now=None) -> str:
        if self.ended_at is not None:
            return "ended"
        if self.expires_at <= (now or timezone.now()):
            return "expired"
        return "open"


class ToolSecret(models.Model):
    """A project's tool-token secret: the `secret_key` its signalwire-sdk agents share with
    Roomkey. One row per project, made on first use.

    Rotating moves `secret` to `previous_secret`, which keeps validating until `rotated_at` +
    TOOL_SECRET_GRACE; a second rotation within that window drops the oldest at once. The
    secrets sign tokens, so they are stored; they are never shown in the admin.
    """

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="tool_secret")
    secret = models.CharField(max_length=128, editable=False)
    previous_secret = models.CharField(max_length=128, blank=True, default="", editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)

    def __str__(self):
        return f"tool secret of {self.project}"


class ToolToken(models.Model):
    """What Roomkey keeps about a tool token it issued beyond its IssuedToken row: the session
    it belongs to and, when `max_uses` is set, how often it has been validated.

    Lives and dies with its registry row (and with its session).
    """

    issued = models.OneToOneField(
        "tokens.IssuedToken",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="tool_token",
        verbose_name="issued token",
    )
    session = models.ForeignKey(CallSession, on_delete=models.CASCADE, related_name="tool_tokens")
    function = models.CharField(max_length=64)
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-issued__issued_at"]

    def __str__(self):
        return f"{self.function} @ {self.session_id}"


# --- LiveKit credentials per project, voice-session messages --------------------------------


class LiveKitConfig(models.Model):
    """A project's own LiveKit server and credentials, and what its token-source clients may set.

    One row per project at most; without one (or with blank fields) the project uses the
    LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET settings. The secret is needed to sign
    LiveKit tokens, so it is stored; the admin never shows it. Deleting the row falls back to
    the settings, which makes tokens signed with the old secret stop verifying.
    """

    # Fields of LiveKit's token-source request a client may set, and the default allow-list:
    # room_config (agent dispatch) is off until staff allow it.
    TOKEN_SOURCE_FIELDS = [
        ("room_name", "room_name"),
        ("participant_identity", "participant_identity"),
        ("participant_name", "participant_name"),
        ("participant_metadata", "participant_metadata"),
        ("participant_attributes", "participant_attributes"),
        ("room_config", "room_config (agent dispatch)"),
    ]
    DEFAULT_TOKEN_SOURCE_FIELDS = [
        "room_name",
        "participant_identity",
        "participant_name",
        "participant_metadata",
        "participant_attributes",
    ]

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="livekit")
    url = models.CharField(
        "LiveKit URL", max_length=500, blank=True, help_text="e.g. wss://example.livekit.cloud"
    )
    api_key = models.CharField("LiveKit API key", max_length=200, blank=True)
    api_secret = models.CharField("LiveKit API secret", max_length=500, blank=True)
    token_source_fields = models.JSONField(
        default=_default_token_source_fields,
        blank=True,
        help_text="Fields of the token-source request clients of this project may set.",
    )

    class Meta:
        verbose_name = "LiveKit configuration"

    def __str__(self):
        return f"LiveKit for {self.project}"


class VoiceSessionMessage(models.Model):
    """A text message a client sent on a voice session's WebSocket.

    Written as it arrives, kept with its session (deleted with it), and written to the
    session's chat conversation too (channel `voice-<session id>`, agents.services).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(VoiceSession, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, default="user")
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["session", "created_at"]

    def __str__(self):
        return self.text[:50]
