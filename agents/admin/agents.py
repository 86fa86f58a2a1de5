"""Staff manage agents and their versions (publish, make active) and assistants (with a preview
of the rendered prompt); revoking every token of an agent or assistant closes its live sockets."""

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from tokens.admin import (
    GuardedActionsAdmin,
    ReadOnlyInline,
    revoke_tokens_action,
    staff_action,
)

from .. import prompts, services
from ..models import (
    Agent,
    AgentVersion,
    Assistant,
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
