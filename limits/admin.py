"""Each project's limits and its usage against its quotas. Rows come with their projects:
staff change a project's own limits here (an empty field is the setting's default), never add
or delete a row."""

from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from . import policy
from .models import ProjectLimits

RATE_FIELDS = (
    "issue_rate",
    "validate_rate",
    "introspect_rate",
    "revoke_rate",
    "chat_rate",
    "api_rate",
    "relay_request_rate",
    "voice_frame_rate",
)
QUOTA_FIELDS = tuple(policy.QUOTAS)


def with_usage(queryset):
    """`queryset` of ProjectLimits, each row with `used_<quota>` for every counted quota: one
    query for a whole changelist page."""
    now = timezone.now()
    for quota in policy.counted_quotas():
        rows = (
            policy.usage_rows(quota, now)
            .filter(project=OuterRef("project"))
            .order_by()
            .values("project")
            .annotate(n=Count("pk"))
            .values("n")
        )
        queryset = queryset.annotate(**{f"used_{quota}": Coalesce(Subquery(rows), 0)})
    return queryset


def _limit(row: ProjectLimits, quota: str) -> tuple[int | None, bool]:
    """(the quota that applies to the row's project, whether it is the project's own)."""
    own = getattr(row, quota)
    return (own, True) if own is not None else (policy.quota_default(quota), False)


def _used_of(row: ProjectLimits, quota: str) -> str:
    used = getattr(row, f"used_{quota}", 0)
    limit, own = _limit(row, quota)
    shown = "no quota" if limit is None else str(limit)
    text = f"{used} / {shown}" + ("" if own else " (default)")
    if limit is not None and used >= limit:
        return format_html("<strong>{}</strong> (full)", text)
    return text


@admin.register(ProjectLimits)
class ProjectLimitsAdmin(admin.ModelAdmin):
    list_display = (
        "project",
        "chat_sockets",
        "voice_sockets",
        "call_sessions",
        "voice_session_length",
        "own_rates",
    )
    list_select_related = ("project",)
    search_fields = ("project__name", "=project__id")
    readonly_fields = ("project", "usage", "updated_at")
    fieldsets = (
        (None, {"fields": ("project", "usage", "updated_at")}),
        ("Quotas", {"fields": QUOTA_FIELDS}),
        (
            "Rates per API key (chat token on the Fabric paths) and per socket",
            {"fields": RATE_FIELDS},
        ),
    )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return with_usage(super().get_queryset(request))

    @admin.display(description="chat sockets (open / quota)")
    def chat_sockets(self, row):
        return _used_of(row, "max_chat_sockets")

    @admin.display(description="voice sockets (open / quota)")
    def voice_sockets(self, row):
        return _used_of(row, "max_voice_sockets")

    @admin.display(description="call sessions (open / quota)")
    def call_sessions(self, row):
        return _used_of(row, "max_call_sessions")

    @admin.display(description="longest voice session")
    def voice_session_length(self, row):
        limit, own = _limit(row, "max_voice_session_seconds")
        shown = "no limit" if limit is None else f"{limit} s"
        return shown + ("" if own else " (default)")

    @admin.display(description="own rates")
    def own_rates(self, row):
        own = [(f.removesuffix("_rate"), getattr(row, f)) for f in RATE_FIELDS if getattr(row, f)]
        return ", ".join(f"{name} {rate}" for name, rate in own) or "—"

    @admin.display(description="usage against quotas")
    def usage(self, row):
        if row.pk is None:
            return "—"
        row = with_usage(ProjectLimits.objects.filter(pk=row.pk)).get()
        lines = [(policy.QUOTAS[q].label, _used_of(row, q)) for q in policy.counted_quotas()]
        return format_html(
            "<table>{}</table>", format_html_join("", "<tr><td>{}</td><td>{}</td></tr>", lines)
        )
