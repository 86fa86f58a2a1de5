"""Staff inspect and end call sessions, revoke their tool tokens, and rotate tool secrets (a new
secret is shown once; the old one validates for the grace window)."""

from django.contrib import admin, messages
from django.utils.html import format_html

from tokens.admin import (
    GuardedActionsAdmin,
    ReadOnlyInline,
    StatusFilter,
    json_block,
    revoke_action,
    staff_action,
)

from .. import services
from ..models import (
    CallSession,
    ToolSecret,
    ToolToken,
)


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
