"""Staff inspect and end rooms and voice sessions (ending revokes their tokens and closes their
sockets), and manage per-project LiveKit settings, whose API secret is never displayed."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from tokens.admin import (
    GuardedActionsAdmin,
    ReadOnlyInline,
    StatusFilter,
    json_block,
    revoke_action,
)
from tokens.models import IssuedToken

from .. import services
from ..models import (
    LiveKitConfig,
    Room,
    VoiceSession,
    VoiceSessionMessage,
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
