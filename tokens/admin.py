"""Staff inspect and revoke; history is not edited.

API keys are shown once, when created; digests and signing secrets are never displayed.
"""

import json

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from . import services
from .models import ApiKey, IssuedToken, Project, SigningKey


def staff_label(request) -> str:
    """Who did it, as the rows a staff action writes record it (agents' admin too)."""
    return f"admin:{request.user.get_username()}"


def json_block(value) -> str:
    """A JSON value for a read-only admin field: indented, as written (not ASCII-escaped)."""
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ("name", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "created_at")
    search_fields = ("name", "id")
    readonly_fields = ("id", "created_at")
    inlines = [ApiKeyInline]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # A new project gets its signing key and a first API key, shown once.
        super().save_model(request, obj, form, change)
        services.signing_key_create(project=obj)
        new = services.api_key_create(project=obj, name="first key")
        _show_key_once(request, new.raw)


def _show_key_once(request, raw: str) -> None:
    messages.warning(
        request,
        format_html("New API key (copy it now, it is not shown again): <code>{}</code>", raw),
    )


class ApiKeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("usable", "Usable"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "usable":
            return queryset.usable(now)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "project", "status", "created_at", "expires_at", "last_used_at")
    list_filter = (ApiKeyStatusFilter, "project")
    list_select_related = ("project",)
    search_fields = ("name", "prefix")
    fields = ("project", "name", "prefix", "expires_at", "created_at", "revoked_at", "last_used_at")
    readonly_fields = ("prefix", "created_at", "revoked_at", "last_used_at")
    actions = ["revoke_keys"]

    def has_delete_permission(self, request, obj=None):
        # Keys are revoked, not deleted: the tokens they issued keep pointing at them.
        return False

    @admin.display(description="status")
    def status(self, obj):
        if obj.revoked_at:
            return "revoked"
        return "usable" if obj.is_usable else "expired"

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # a key's project cannot change once it exists
            return (*self.readonly_fields, "project")
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        new = services.api_key_create(project=obj.project, name=obj.name, expires_at=obj.expires_at)
        obj.pk = new.row.pk
        obj.refresh_from_db()
        _show_key_once(request, new.raw)

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_keys(self, request, queryset):
        count = sum(services.api_key_revoke(api_key=key) for key in queryset)
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    list_display = ("kid", "project", "active", "created_at", "retired_at")
    list_filter = ("active", "project")
    list_select_related = ("project",)
    fields = ("project", "kid", "active", "created_at", "retired_at")
    readonly_fields = ("project", "kid", "active", "created_at", "retired_at")
    actions = ["rotate", "retire"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Rotate: new signing key for these projects", permissions=["change"])
    def rotate(self, request, queryset):
        projects = {key.project for key in queryset.select_related("project")}
        for project in projects:
            services.signing_key_rotate(project=project)
        self.message_user(request, f"Rotated keys of {len(projects)} project(s).")

    @admin.action(description="Retire (tokens they signed stop verifying)", permissions=["change"])
    def retire(self, request, queryset):
        for key in queryset:
            services.signing_key_retire(key=key)
        self.message_user(request, f"Retired {queryset.count()} key(s).")


class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.active(now)
        if self.value() == "expired":
            return queryset.expired(now)
        if self.value() == "revoked":
            return queryset.revoked()
        return queryset


@admin.register(IssuedToken)
class IssuedTokenAdmin(admin.ModelAdmin):
    list_display = (
        "jti",
        "kind",
        "subject",
        "project",
        "status",
        "issued_at",
        "expires_at",
        "client_ip",
    )
    list_filter = ("kind", TokenStatusFilter, "project")
    list_select_related = ("project", "api_key")
    search_fields = ("subject",)
    search_help_text = "Exact jti, or part of the subject."
    date_hierarchy = "issued_at"
    readonly_fields = (
        "jti",
        "kind",
        "project",
        "subject",
        "resource",
        "readable_grants",
        "status",
        "issued_at",
        "expires_at",
        "api_key",
        "signing_kid",
        "client_ip",
        "revoked_at",
        "revoked_by",
        "revoke_reason",
    )
    fields = readonly_fields
    actions = ["revoke_selected"]

    def has_add_permission(self, request):
        return False

    def get_search_results(self, request, queryset, search_term):
        # An exact, case-sensitive jti match uses the primary-key index ("=jti" would not).
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            results |= queryset.filter(pk=term)
        return results, may_have_duplicates

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_revoke_permission(self, request):
        return request.user.has_perm("tokens.revoke_issuedtoken")

    @admin.display(description="status")
    def status(self, obj):
        return obj.status()

    @admin.display(description="grants")
    def readable_grants(self, obj):
        grants = dict(obj.grants or {})
        channels = grants.pop("channels", None)
        parts = []
        if channels:
            rows = format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (name, "yes" if p.get("read") else "no", "yes" if p.get("write") else "no")
                    for name, p in channels.items()
                ),
            )
            parts.append(
                format_html(
                    "<table><thead><tr><th>channel</th><th>read</th><th>write</th></tr>"
                    "</thead><tbody>{}</tbody></table>",
                    rows,
                )
            )
        if grants:
            parts.append(json_block(grants))
        return format_html_join("", "{}", ((p,) for p in parts)) if parts else "—"

    @admin.action(description="Revoke selected", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        count = services.token_revoke_many(
            queryset=queryset,
            by=staff_label(request),
            reason="revoked in the admin",
        )
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)


class RevokeTokensMixin:
    """A "revoke every token issued for the selected objects" action, allowed to staff with
    the registry's revoke permission (as "Revoke selected" on issued tokens)."""

    revoke_service = None  # (obj, *, by, reason) -> number of tokens revoked

    def has_revoke_permission(self, request):
        return request.user.has_perm("tokens.revoke_issuedtoken")

    @admin.action(
        description="Revoke every token issued for the selected (closes their live sockets)",
        permissions=["revoke"],
    )
    def revoke_tokens_for(self, request, queryset):
        by = staff_label(request)
        revoked = sum(
            self.revoke_service(obj, by=by, reason="revoked in the admin") for obj in queryset
        )
        self.message_user(
            request,
            f"Revoked {revoked} token(s) of {queryset.count()} object(s).",
            messages.SUCCESS,
        )
