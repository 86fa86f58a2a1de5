"""Pagination of Roomkey's own chat API.

Lists of addresses, conversations and members use DRF's cursor pagination. A conversation's
history uses chat.selectors.messages_page, the keyset pages (cut on (ts, id)) that the relay
and the Fabric API page with too, wrapped in DRF's cursor-pagination answer shape
`{"next", "previous", "results"}` with absolute links. A `page_size` over the maximum is
refused rather than silently clamped.
"""

from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.utils.urls import remove_query_param, replace_query_param

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 100

# History links carry one of these, holding the cursor of the page's boundary message.
BEFORE, AFTER = "before", "after"


class PageSizeSerializer(serializers.Serializer):
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
