"""Staff inspect and act through the services; history is not edited."""

# --- Call sessions and tool tokens (issue 5) ----------------------------------------------

import json

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from . import services
from .models import CallSession, ToolSecret, ToolToken


def _staff_label(request) -> str:
    return f"admin:{request.user.get_username()}"


class ToolTokenInline(admin.TabularInline):
    model = ToolToken
    fields = ("jti", "function", "token_status", "issued_at", "expires_at", "max_uses", "uses")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

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


class SessionStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("expired", "Expired"), ("ended", "Ended")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "open":
            return queryset.filter(ended_at__isnull=True, expires_at__gt=now)
        if self.value() == "expired":
            return queryset.filter(ended_at__isnull=True, expires_at__lte=now)
        if self.value() == "ended":
            return queryset.filter(ended_at__isnull=False)
        return queryset


@admin.register(CallSession)
class CallSessionAdmin(admin.ModelAdmin):
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
        return format_html("<pre>{}</pre>", json.dumps(obj.metadata, indent=2, ensure_ascii=False))

    @admin.action(description="End selected sessions (revokes their tool tokens)")
    def end_sessions(self, request, queryset):
        count = sum(
            services.call_session_end(session=s, by=_staff_label(request), reason="ended in admin")
            for s in queryset
        )
        self.message_user(request, f"Ended {count} session(s).", messages.SUCCESS)

    @admin.action(description="Revoke the tool tokens of selected sessions")
    def revoke_tokens(self, request, queryset):
        count = sum(
            services.call_session_revoke_tokens(
                session=s, by=_staff_label(request), reason="revoked in the admin"
            )
            for s in queryset
        )
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)


@admin.register(ToolSecret)
class ToolSecretAdmin(admin.ModelAdmin):
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

    @admin.action(description="Rotate (the old secret validates for the grace window)")
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
