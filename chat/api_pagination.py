"""Pagination of Roomkey's own chat API.

Lists of addresses, conversations and members use DRF's cursor pagination. A conversation's
history uses chat.selectors.messages_page, the keyset pages (cut on (ts, id)) that the relay
and the Fabric API page with too, wrapped in DRF's cursor-pagination answer shape
`{"next", "previous", "results"}` with absolute links. A `page_size` over the maximum is
refused rather than silently clamped.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.utils.urls import remove_query_param, replace_query_param

from tokens.serializers import Serializer

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 100

# History links carry one of these, holding the cursor of the page's boundary message.
BEFORE, AFTER = "before", "after"


class PageSizeSerializer(Serializer):
    page_size = serializers.IntegerField(
        min_value=1, max_value=PAGE_SIZE_MAX, required=False, default=PAGE_SIZE_DEFAULT
    )


class ListPagination(CursorPagination):
    page_size = PAGE_SIZE_DEFAULT
    page_size_query_param = "page_size"
    max_page_size = PAGE_SIZE_MAX
    ordering = ("-created_at", "-pk")

    def get_page_size(self, request):
        query = PageSizeSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data["page_size"]

    def paginate_queryset(self, queryset, request, view=None):
        # DRF answers an undecodable cursor with 404 "Invalid cursor", as if the list were
        # gone, and passes a decodable one's position to the database unchecked (`p=2020`, or
        # a time past year 9999 in UTC, was a 500). Both are the 400 naming the parameter
        # that the history's cursors get.
        field = queryset.model._meta.get_field(self.ordering[0].lstrip("-"))
        try:
            cursor = self.decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                field.get_prep_value(field.to_python(cursor.position))
            return super().paginate_queryset(queryset, request, view)
        except (exceptions.NotFound, DjangoValidationError, ValueError, OverflowError):
            raise exceptions.ValidationError(
                {self.cursor_query_param: ["Cursor is not valid."]}, code="invalid"
            ) from None


class MemberPagination(ListPagination):
    ordering = ("joined_at", "pk")


def history_links(request, page) -> tuple[str | None, str | None]:
    """(next, previous) of a chat.selectors.MessagePage: `next` leads to older messages."""
    url = remove_query_param(remove_query_param(request.build_absolute_uri(), BEFORE), AFTER)
    next_url = previous_url = None
    if page.older and page.items:
        next_url = replace_query_param(url, BEFORE, page.last_cursor)
    if page.newer:
        previous_url = (
            replace_query_param(url, AFTER, page.first_cursor) if page.items else url
        )  # an empty page past the newest message leads back to the newest page
    return next_url, previous_url
