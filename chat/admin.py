"""Staff inspect chat: addresses, conversations with their history and members, messages.

History is not edited. A message can be hidden (kept out of every history from then on, and
shown again by "unhide"), through chat.services like every other write.
"""

from datetime import UTC, datetime

from django import forms
from django.contrib import admin, messages
from django.forms.models import BaseInlineFormSet

from tokens.admin import GuardedActionsAdmin, ReadOnlyInline, revoke_tokens_action, staff_action

from . import services
from .models import Address, Conversation, Member, Message
from .names import InvalidChannelName, clean_channel_name

# A conversation's page shows its newest messages only; the Messages list has the rest.
INLINE_MESSAGES = 50


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


class NewestMessagesFormSet(BaseInlineFormSet):
    def get_queryset(self):
        # Sliced after the inline's own filter by conversation: a long history must not load
        # whole into the change page.
        return super().get_queryset().order_by("-ts", "-id")[:INLINE_MESSAGES]


class MessageInline(ReadOnlyInline):
    model = Message
    formset = NewestMessagesFormSet
    fields = ("sent", "user_id", "text", "subtype", "hidden")
    show_change_link = True
    verbose_name_plural = f"messages (newest {INLINE_MESSAGES}, newest first)"

    @admin.display(description="sent")
    def sent(self, obj):
        return _when(obj.ts)


class MemberInline(ReadOnlyInline):
    model = Member
    fields = ("member_id", "present", "state", "joined_at", "left_at")

    @admin.display(boolean=True, description="present")
    def present(self, obj):
        return obj.is_present


class AddressForm(forms.ModelForm):
    class Meta:
        model = Address
        fields = ("project", "name", "display_name")

    def clean_name(self):
        # The rules chat tokens follow, NFC-normalised before the uniqueness check runs.
        try:
            return clean_channel_name(self.cleaned_data["name"])
        except InvalidChannelName as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(Address)
class AddressAdmin(admin.ModelAdmin):
    form = AddressForm
    list_display = ("name", "display_name", "project", "id", "created_at")
    list_filter = ("project",)
    list_select_related = ("project",)
    search_fields = ("name", "display_name")
    fields = ("project", "name", "display_name", "id", "created_at")
    readonly_fields = ("id", "created_at")

    def get_readonly_fields(self, request, obj=None):
        # Tokens grant channels by name, so a name (and its project) is fixed once it exists.
        if obj is not None:
            return (*self.readonly_fields, "project", "name")
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            services.address_update(address=obj, display_name=obj.display_name)
            return
        created = services.address_create(
            project=obj.project, name=obj.name, display_name=obj.display_name
        )
        obj.pk = created.pk
        obj.refresh_from_db()

    def get_deleted_objects(self, objs, request):
        # Django lists every related row on the confirmation page, which for a long history
        # is a million lines; counts say the same.
        objs = list(objs)
        conversations = Conversation.objects.filter(address__in=objs)
        counts = {
            "addresses": len(objs),
            "conversations": conversations.count(),
            "members": Member.objects.filter(conversation__in=conversations).count(),
            "messages": Message.objects.filter(conversation__in=conversations).count(),
        }
        summary = [
            f"{address.name} (with its conversation, members and messages)" for address in objs
        ]
        return summary, counts, set(), []

    def delete_model(self, request, obj):
        services.address_delete(address=obj)

    def delete_queryset(self, request, queryset):
        for address in queryset:
            services.address_delete(address=address)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("address", "project", "created_at", "last_message_at")
    list_filter = ("project",)
    list_select_related = ("address", "project")
    search_fields = ("address__name", "address__display_name")
    fields = ("address", "project", "created_at", "last_message_at")
    readonly_fields = fields
    inlines = [MemberInline, MessageInline]

    def has_add_permission(self, request):
        return False  # made with its address

    def has_delete_permission(self, request, obj=None):
        return False  # deleted with its address


@admin.register(Member)
class MemberAdmin(GuardedActionsAdmin):
    actions = ["revoke_tokens_for"]
    revoke_tokens_for = revoke_tokens_action(
        lambda member, **audit: services.member_tokens_revoke(member=member, **audit)
    )

    list_display = ("member_id", "conversation", "present", "joined_at", "left_at")
    list_filter = ("conversation__project",)
    list_select_related = ("conversation__address",)
    search_fields = ("member_id",)
    fields = ("member_id", "conversation", "state", "joined_at", "left_at", "connections")
    readonly_fields = fields

    @admin.display(boolean=True, description="present")
    def present(self, obj):
        return obj.is_present

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Message)
class MessageAdmin(GuardedActionsAdmin):
    list_display = ("excerpt", "user_id", "conversation", "sent", "subtype", "hidden")
    list_filter = ("hidden", "subtype", "conversation__project")
    list_select_related = ("conversation__address",)
    search_fields = ("user_id",)
    search_help_text = "Member id (exact or part)."
    ordering = ("-ts", "-id")
    # Counting a million rows on every page load is the slow part of a long history.
    show_full_result_count = False
    fields = (
        "id",
        "conversation",
        "user_id",
        "user_name",
        "from_address_id",
        "sent",
        "ts",
        "text",
        "metadata",
        "details",
        "type",
        "subtype",
        "hidden",
    )
    readonly_fields = fields
    actions = ["hide_messages", "unhide_messages"]

    @admin.display(description="text")
    def excerpt(self, obj):
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"

    @admin.display(description="sent", ordering="ts")
    def sent(self, obj):
        return _when(obj.ts)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @staff_action(description="Hide selected messages", permissions=["model_change"])
    def hide_messages(self, request, queryset):
        count = sum(services.message_hide(message=message) for message in queryset)
        self.message_user(request, f"Hid {count} message(s).", messages.SUCCESS)

    @staff_action(description="Unhide selected messages", permissions=["model_change"])
    def unhide_messages(self, request, queryset):
        count = sum(services.message_unhide(message=message) for message in queryset)
        self.message_user(request, f"Unhid {count} message(s).", messages.SUCCESS)
