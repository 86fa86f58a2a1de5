"""Staff inspect and revoke; history is not edited.

API keys are shown once, when created; digests and signing secrets are never displayed.

The building blocks every app's admin uses live here too: the staff label, the JSON block, the
read-only inline, the status filter, and the permission-checked actions (`staff_action`,
`revoke_action`) of a `GuardedActionsAdmin`.
"""

import functools
import json

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
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


# --- Shared building blocks -------------------------------------------------------------------

REVOKE_PERMISSION = "tokens.revoke_issuedtoken"


class ReadOnlyInline(admin.TabularInline):
    """Rows shown under their parent: every field read-only, none added, changed or deleted."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StatusFilter(admin.SimpleListFilter):
    """The "status" filter of a changelist. `statuses` maps each value of ?status= to its label
    and to `narrow(queryset, now)`, the rows in that status."""

    title = "status"
    parameter_name = "status"
    statuses = {}

    def lookups(self, request, model_admin):
        return [(value, label) for value, (label, _) in self.statuses.items()]

    def queryset(self, request, queryset):
        if self.value() not in self.statuses:
            return queryset
        _, narrow = self.statuses[self.value()]
        return narrow(queryset, timezone.now())


def _refuse_without(model_admin, request, permissions) -> None:
    if not any(getattr(model_admin, f"has_{name}_permission")(request) for name in permissions):
        raise PermissionDenied


def staff_action(*, description, permissions):
    """`@admin.action` for an action that writes. It names the permissions it needs, any one of
    which suffices: "revoke" (the registry's revoke permission, for actions that revoke tokens or
    end what they were issued for), "change" (the model's change permission, for actions that
    change the rows themselves) or "model_change" (the same, where the admin shows the rows
    read-only). Django does not offer the action to staff without one of them; the action
    itself refuses them too (403), whoever calls it."""

    def decorate(func):
        @functools.wraps(func)
        def checked(model_admin, request, queryset):
            _refuse_without(model_admin, request, permissions)
            return func(model_admin, request, queryset)

        return admin.action(description=description, permissions=permissions)(checked)

    return decorate


def revoke_action(*, description, revoke, reason, message):
    """An action that ends or revokes the selected rows: `revoke(row, by=<staff label>,
    reason=reason)` for each, returning how many it ended or revoked. It reports
    `message.format(count=<their sum>, selected=<rows selected>)` and needs the revoke
    permission."""

    @staff_action(description=description, permissions=["revoke"])
    def action(model_admin, request, queryset):
        by = staff_label(request)
        count = sum(revoke(row, by=by, reason=reason) for row in queryset)
        model_admin.message_user(
            request, message.format(count=count, selected=queryset.count()), messages.SUCCESS
        )

    return action


def revoke_tokens_action(revoke):
    """The "Revoke every token issued for the selected" action of agents, assistants and chat
    members: `revoke(row, *, by, reason)` revokes the tokens of one row and returns how many."""
    return revoke_action(
        description="Revoke every token issued for the selected (closes their live sockets)",
        revoke=revoke,
        reason="revoked in the admin",
        message="Revoked {count} token(s) of {selected} object(s).",
    )


class GuardedActionsAdmin(admin.ModelAdmin):
    """A ModelAdmin whose actions (made with `staff_action`) write only for staff with their
    permission. Django answers a POST of an action the user is not offered with "No action
    selected" (or, when none is offered, the changelist again); here it is a 403 before
    anything runs."""

    def has_revoke_permission(self, request):
        return request.user.has_perm(REVOKE_PERMISSION)

    def has_model_change_permission(self, request):
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST":
            action = self._posted_action(request)
            if action is not None:
                _refuse_without(self, request, action.allowed_permissions)
        return super().changelist_view(request, extra_context)

    def _posted_action(self, request):
        """The action of this admin that the POST names (the one whose button was pushed, as
        Django picks it), if it declares permissions."""
        try:
            index = int(request.POST.get("index", 0))
        except ValueError:
            index = 0
        try:
            name = request.POST.getlist("action")[index]
        except IndexError:
            return None
        if name not in (self.actions or ()):
            return None
        action = getattr(type(self), name, None)
        return action if getattr(action, "allowed_permissions", None) else None


# --- The registry's models --------------------------------------------------------------------


class ApiKeyInline(ReadOnlyInline):
    model = ApiKey
    fields = ("name", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at")
    show_change_link = True


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


class ApiKeyStatusFilter(StatusFilter):
    statuses = {
        "usable": ("Usable", lambda keys, now: keys.usable(now)),
        "expired": (
            "Expired",
            lambda keys, now: keys.filter(revoked_at__isnull=True, expires_at__lte=now),
        ),
        "revoked": ("Revoked", lambda keys, now: keys.filter(revoked_at__isnull=False)),
    }


@admin.register(ApiKey)
class ApiKeyAdmin(GuardedActionsAdmin):
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

    @staff_action(description="Revoke selected API keys", permissions=["change"])
    def revoke_keys(self, request, queryset):
        count = sum(services.api_key_revoke(api_key=key) for key in queryset)
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)


@admin.register(SigningKey)
class SigningKeyAdmin(GuardedActionsAdmin):
    list_display = ("kid", "project", "active", "created_at", "retired_at")
    list_filter = ("active", "project")
    list_select_related = ("project",)
    fields = ("project", "kid", "active", "created_at", "retired_at")
    readonly_fields = ("project", "kid", "active", "created_at", "retired_at")
    actions = ["rotate", "retire"]

    def has_add_permission(self, request):
        return False

    @staff_action(description="Rotate: new signing key for these projects", permissions=["change"])
    def rotate(self, request, queryset):
        projects = {key.project for key in queryset.select_related("project")}
        for project in projects:
            services.signing_key_rotate(project=project)
        self.message_user(request, f"Rotated keys of {len(projects)} project(s).")

    @staff_action(description="Retire (tokens they signed stop verifying)", permissions=["change"])
    def retire(self, request, queryset):
        for key in queryset:
            services.signing_key_retire(key=key)
        self.message_user(request, f"Retired {queryset.count()} key(s).")


class TokenStatusFilter(StatusFilter):
    statuses = {
        "active": ("Active", lambda tokens, now: tokens.active(now)),
        "expired": ("Expired", lambda tokens, now: tokens.expired(now)),
        "revoked": ("Revoked", lambda tokens, now: tokens.revoked()),
    }


@admin.register(IssuedToken)
class IssuedTokenAdmin(GuardedActionsAdmin):
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

    @staff_action(description="Revoke selected", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        count = services.token_revoke_many(
            queryset=queryset,
            by=staff_label(request),
            reason="revoked in the admin",
        )
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)
