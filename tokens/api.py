"""What every Roomkey API view shares."""

import ipaddress

from rest_framework.views import APIView

from .errors import ContractErrorsMixin


class RoomkeyAPIView(ContractErrorsMixin, APIView):
    """An APIView whose every error, request-body failures (too large, undecodable) and
    unexpected exceptions included, is answered in the view's `error_format`."""


def client_ip(request) -> str | None:
    """The peer address as the ASGI server reports it, or None if it is not an IP address.

    Forwarded headers are not read here: the ASGI server decides whom to trust with them
    (uvicorn's --forwarded-allow-ips), and `make run` trusts no one.
    """
    try:
        return str(ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")))
    except ValueError:
        return None
