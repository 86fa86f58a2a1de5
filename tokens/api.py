"""What every Roomkey API view shares."""

from rest_framework.views import APIView

from .parsers import as_api_exception


class RoomkeyAPIView(APIView):
    """An APIView whose request-body failures (too large, undecodable) are API errors in the
    endpoint's own format rather than Django's HTML 400."""

    def handle_exception(self, exc):
        return super().handle_exception(as_api_exception(exc))


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None
