"""Bench-only URLconf (DJANGO_ROOT_URLCONF=bench.urls): Roomkey's URLs plus a trivial
endpoint that goes through the same DRF machinery as issuance (API-key authentication,
IsAuthenticated, a parsed JSON body, a JSON response) and does nothing else."""

from django.urls import include, path
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView


class PingView(APIView):
    """POST /bench/ping: the default authentication and permission classes, a parsed body,
    `{"ok": true}`."""

    def post(self, request):
        if not isinstance(request.data, dict):  # parses the body, as issuance does
            raise exceptions.ParseError("Expected a JSON object.")
        return Response({"ok": True})


urlpatterns = [
    path("bench/ping", PingView.as_view(), name="bench-ping"),
    path("", include("config.urls")),
]
