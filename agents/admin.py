"""Staff manage agents, versions, assistants and per-project LiveKit settings; inspect and end
rooms, voice sessions and call sessions; revoke tool tokens and rotate tool secrets.

Every write goes through agents.services, like the API's. Secrets (LiveKit API secrets, tool
secrets) are never displayed; a rotated tool secret is shown once."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from tokens.admin import (
    GuardedActionsAdmin,
    ReadOnlyInline,
    StatusFilter,
    json_block,
    revoke_action,
    revoke_tokens_action,
    staff_action,
)
from tokens.models import IssuedToken

from . import prompts, services
from .models import (
    Agent,
    AgentVersion,
    Assistant,
    CallSession,
    LiveKitConfig,
    Room,
    ToolSecret,
    ToolToken,
    VoiceSession,
    VoiceSessionMessage,
)


class AgentVersionInline(ReadOnlyInline):
    model = AgentVersion
    fields = ("number", "status", "published_at", "created_at")
    show_change_link = True
    ordering = ("-number",)


class AgentForm(forms.ModelForm):
    class Meta:
        model = Agent
        fields = ("project", "name", "dispatch_name", "active_version")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Only this agent's published versions can be active.
        field = self.fields.get("active_version")
        if field is not None:
            field.queryset = AgentVersion.objects.filter(
                agent=self.instance if self.instance.pk else None,
                status=AgentVersion.PUBLISHED,
            )


@admin.register(Agent)
class AgentAdmin(GuardedActionsAdmin):
    form = AgentForm
    list_display = ("name", "project", "dispatch_name", "active_version", "created_at")
    list_filter = ("project",)
    list_select_related = ("project", "active_version")
    search_fields = ("name", "dispatch_name", "id")
    readonly_fields = ("id", "created_at")
    inlines = [AgentVersionInline]
    actions = ["revoke_tokens_for"]
    revoke_tokens_for = revoke_tokens_action(
        lambda agent, **audit: services.agent_tokens_revoke(agent=agent, **audit)
    )

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # an agent stays in its project
            return (*self.readonly_fields, "project")
        return self.readonly_fields


class AgentVersionForm(forms.ModelForm):
    class Meta:
        model = AgentVersion
        fields = ("agent", "prompt", "first_message", "config")


@admin.register(AgentVersion)
class AgentVersionAdmin(GuardedActionsAdmin):
    """Drafts are edited here; "Publish" freezes them, "Make active" puts one in use."""

    form = AgentVersionForm
    list_display = ("__str__", "agent", "number", "status", "is_active", "published_at")
    list_filter = ("status", "agent__project")
    list_select_related = ("agent", "agent__active_version")
    search_fields = ("agent__name", "id")
    readonly_fields = ("id", "number", "status", "created_at", "published_at")
    actions = ["publish", "make_active"]

    @admin.display(boolean=True, description="active")
    def is_active(self, obj):
        return obj.agent.active_version_id == obj.pk

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return (*self.readonly_fields, "agent")
        return self.readonly_fields

    def has_change_permission(self, request, obj=None):
        # A published version is immutable: viewable, never editable.
        if obj is not None and obj.is_published:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        # Nor deleted: sessions and rooms name it as what they ran. (Django's "Delete
        # selected" asks this for each object, and refuses the lot if one is published.)
        if obj is not None and obj.is_published:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        new = services.agent_version_create(
            agent=obj.agent, prompt=obj.prompt, first_message=obj.first_message, config=obj.config
        )
        obj.pk = new.pk
        obj.refresh_from_db()

    @staff_action(
        description="Publish selected drafts (they become immutable)", permissions=["change"]
    )
    def publish(self, request, queryset):
        count = sum(services.agent_version_publish(version=v) for v in queryset)
        self.message_user(request, f"Published {count} version(s).", messages.SUCCESS)

    @staff_action(
        description="Make active (the version sessions run by default)", permissions=["change"]
    )
    def make_active(self, request, queryset):
        done = 0
        for version in queryset.select_related("agent"):
            try:
                services.agent_set_active_version(agent=version.agent, version=version)
                done += 1
            except services.Unprocessable as exc:
                self.message_user(request, f"{version}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{done} version(s) made active.", messages.SUCCESS)


@admin.register(Assistant)
class AssistantAdmin(GuardedActionsAdmin):
    list_display = ("name", "project", "dispatch_name", "created_at")
    actions = ["revoke_tokens_for"]
    revoke_tokens_for = revoke_tokens_action(
        lambda assistant, **audit: services.assistant_tokens_revoke(assistant=assistant, **audit)
    )
    list_filter = ("project",)
    list_select_related = ("project",)
    search_fields = ("name", "dispatch_name", "id")
    fields = (
        "id",
        "project",
        "name",
        "dispatch_name",
        "prompt_template",
        "first_message_template",
        "placeholders",
        "preview_metadata",
        "preview",
        "created_at",
    )
    readonly_fields = ("id", "placeholders", "preview", "created_at")

    @admin.display(description="placeholders")
    def placeholders(self, obj):
        names = prompts.placeholders(f"{obj.prompt_template}\n{obj.first_message_template}")
        return ", ".join(names) or "—"

    @admin.display(description="rendered with the sample metadata")
    def preview(self, obj):
        if obj.pk is None:
            return "Save to see the preview."
        metadata = obj.preview_metadata if isinstance(obj.preview_metadata, dict) else {}
        return format_html(
            "<p><b>Prompt</b></p><pre>{}</pre><p><b>First message</b></p><pre>{}</pre>",
            prompts.render(obj.prompt_template, metadata),
            prompts.render(obj.first_message_template, metadata),
        )


class RoomStatusFilter(StatusFilter):
    statuses = {
        "open": ("Open", lambda rooms, now: rooms.filter(ended_at__isnull=True)),
        "ended": ("Ended", lambda rooms, now: rooms.filter(ended_at__isnull=False)),
    }


@admin.register(Room)
class RoomAdmin(GuardedActionsAdmin):
    list_display = ("name", "project", "agent", "assistant", "created_at", "ended_at")
    list_filter = (RoomStatusFilter, "project")
    list_select_related = ("project", "agent", "assistant")
    search_fields = ("name", "id")
    fields = (
        "id",
        "name",
        "project",
        "agent",
        "version",
        "assistant",
        "readable_metadata",
        "tokens",
        "created_at",
        "ended_at",
    )
    readonly_fields = fields
    actions = ["end_rooms"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="metadata")
    def readable_metadata(self, obj):
        return json_block(obj.metadata)

    @admin.display(description="tokens issued for it")
    def tokens(self, obj):
        rows = IssuedToken.objects.filter(project_id=obj.project_id, resource=obj.name)
        return f"{rows.count()} ({rows.filter(revoked_at__isnull=False).count()} revoked)"

    end_rooms = revoke_action(
        description="End selected rooms (revokes every token issued for them)",
        revoke=lambda room, **audit: services.room_end(room=room, **audit),
        reason="room ended in the admin",
        message="Ended {selected} room(s); revoked {count} token(s).",
    )


class VoiceSessionMessageInline(ReadOnlyInline):
    model = VoiceSessionMessage
    fields = ("created_at", "role", "text")


@admin.register(VoiceSession)
class VoiceSessionAdmin(GuardedActionsAdmin):
    list_display = (
        "id",
        "agent",
        "version",
        "project",
        "status",
        "created_at",
        "connected_at",
        "ended_at",
        "end_reason",
    )
    list_filter = ("status", "project")
    list_select_related = ("agent", "version", "version__agent", "project")
    search_fields = ("id", "jti")
    date_hierarchy = "created_at"
    fields = (
        "id",
        "project",
        "agent",
        "version",
        "jti",
        "status",
        "end_reason",
        "prompt_override",
        "first_message_override",
        "created_at",
        "expires_at",
        "connected_at",
        "ended_at",
    )
    readonly_fields = fields
    inlines = [VoiceSessionMessageInline]
    actions = ["end_sessions"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    end_sessions = revoke_action(
        description="End selected sessions (closes their sockets, revokes tokens)",
        revoke=lambda session, **audit: services.voice_session_end(session=session, **audit),
        reason="ended",
        message="Ended {count} session(s).",
    )


class LiveKitConfigForm(forms.ModelForm):
    """The secret is write-only: shown never, replaced only when a new one is typed."""

    api_secret = forms.CharField(
        label="LiveKit API secret",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current secret. Never displayed.",
    )
    clear_secret = forms.BooleanField(
        required=False, help_text="Remove the key pair (fall back to the LIVEKIT_* settings)."
    )
    token_source_fields = forms.MultipleChoiceField(
        choices=LiveKitConfig.TOKEN_SOURCE_FIELDS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="What clients of the token-source endpoint may set; anything else is a 403.",
    )

    class Meta:
        model = LiveKitConfig
        fields = ("project", "url", "api_key", "api_secret", "token_source_fields")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["token_source_fields"].initial = (
            self.instance.token_source_fields
            if self.instance.pk
            else LiveKitConfig.DEFAULT_TOKEN_SOURCE_FIELDS
        )

    def clean(self):
        data = super().clean()
        secret = data.get("api_secret") or ("" if data.get("clear_secret") else None)
        if secret is None:  # keep the stored one
            data["api_secret"] = self.instance.api_secret if self.instance.pk else ""
        if data.get("clear_secret"):
            data["api_key"] = ""
        if bool(data.get("api_key")) != bool(data.get("api_secret")):
            raise ValidationError("Set both the LiveKit API key and secret, or neither.")
        return data

    def save(self, commit=True):
        self.instance.api_secret = self.cleaned_data["api_secret"]
        self.instance.api_key = self.cleaned_data["api_key"]
        return super().save(commit)


@admin.register(LiveKitConfig)
class LiveKitConfigAdmin(admin.ModelAdmin):
    form = LiveKitConfigForm
    list_display = ("project", "url", "api_key", "has_secret")
    list_select_related = ("project",)

    @admin.display(boolean=True, description="secret set")
    def has_secret(self, obj):
        return bool(obj.api_secret)

    def get_fields(self, request, obj=None):
        return ("project", "url", "api_key", "api_secret", "clear_secret", "token_source_fields")


# --- Call sessions, tool tokens and tool secrets --------------------------------------------


class ToolTokenInline(ReadOnlyInline):
    model = ToolToken
    fields = ("jti", "function", "token_status", "issued_at", "expires_at", "max_uses", "uses")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("issued")

    @admin.display(description="JTI")
    def jti(self, obj):
        return obj.issued_id

    @admin.display(description="status")
    def token_status(self, obj):
        if obj.max_uses is not None and obj.uses >= obj.max_uses:
            return "used up"
        return obj.issued.status()

    @admin.display(description="issued at")
    def issued_at(self, obj):
        return obj.issued.issued_at

    @admin.display(description="expires at")
    def expires_at(self, obj):
        return obj.issued.expires_at


class SessionStatusFilter(StatusFilter):
    statuses = {
        "open": (
            "Open",
            lambda sessions, now: sessions.filter(ended_at__isnull=True, expires_at__gt=now),
        ),
        "expired": (
            "Expired",
            lambda sessions, now: sessions.filter(ended_at__isnull=True, expires_at__lte=now),
        ),
        "ended": ("Ended", lambda sessions, now: sessions.filter(ended_at__isnull=False)),
    }


@admin.register(CallSession)
class CallSessionAdmin(GuardedActionsAdmin):
    list_display = ("call_id", "project", "agent", "status", "created_at", "expires_at", "ended_at")
    list_filter = (SessionStatusFilter, "project")
    list_select_related = ("project", "agent")
    search_fields = ("call_id",)
    fields = (
        "call_id",
        "project",
        "agent",
        "status",
        "readable_metadata",
        "created_at",
        "expires_at",
        "ended_at",
        "end_reason",
    )
    readonly_fields = fields
    inlines = [ToolTokenInline]
    actions = ["end_sessions", "revoke_tokens"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="status")
    def status(self, obj):
        return obj.status()

    @admin.display(description="metadata")
    def readable_metadata(self, obj):
        return json_block(obj.metadata)

    end_sessions = revoke_action(
        description="End selected sessions (revokes their tool tokens)",
        revoke=lambda session, **audit: services.call_session_end(session=session, **audit),
        reason="ended in admin",
        message="Ended {count} session(s).",
    )
    revoke_tokens = revoke_action(
        description="Revoke the tool tokens of selected sessions",
        revoke=lambda session, **audit: services.call_session_revoke_tokens(
            session=session, **audit
        ),
        reason="revoked in the admin",
        message="Revoked {count} token(s).",
    )


@admin.register(ToolSecret)
class ToolSecretAdmin(GuardedActionsAdmin):
    """Stored secrets are never displayed; a rotation shows the new one once."""

    list_display = ("project", "created_at", "rotated_at", "previous_valid_until")
    list_select_related = ("project",)
    fields = ("project", "created_at", "rotated_at", "previous_valid_until")
    readonly_fields = fields
    actions = ["rotate"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="previous secret valid until")
    def previous_valid_until(self, obj):
        return services.previous_valid_until(obj) or "—"

    @staff_action(
        description="Rotate (the old secret validates for the grace window)", permissions=["change"]
    )
    def rotate(self, request, queryset):
        for row in queryset.select_related("project"):
            new = services.tool_secret_rotate(project=row.project)
            messages.warning(
                request,
                format_html(
                    "New tool secret of {} (copy it now, it is not shown again): <code>{}</code>",
                    row.project,
                    new.secret,
                ),
            )
