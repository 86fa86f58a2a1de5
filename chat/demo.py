"""The chat demo page: two browser tabs chatting through the relay, for development servers.

The browser never holds an API key. The page asks this server for a chat token, which it
mints for the demo project (`seed_demo`) server-side, as a customer's backend would; both
views exist only while DEBUG is on and the demo project exists, and are 404 otherwise.
"""

from django.conf import settings
from django.http import Http404, JsonResponse
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView

from tokens import selectors as token_selectors
from tokens.api import client_ip

from . import services
from .serializers import ChatTokenRequestSerializer
from .views import relay_url

DEMO_CHANNEL = "general"
DEMO_TTL_MINUTES = 60


def _demo_project():
    # Read at request time, so the settings fixture (and a production DEBUG=false) apply.
    if not settings.DEBUG:
        raise Http404("The chat demo is for development servers (DJANGO_DEBUG=true).")
    project = token_selectors.demo_project()
    if project is None:
        raise Http404("No demo project: run `manage.py seed_demo`.")
    return project


class ChatDemoView(TemplateView):
    template_name = "chat_demo.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["project"] = _demo_project()
        context["channel"] = DEMO_CHANNEL
        return context


@require_POST
def chat_demo_token(request):
    """POST member_id (form field; CSRF-protected): a chat token for the demo channel."""
    project = _demo_project()
    serializer = ChatTokenRequestSerializer(
        data={
            "ttl": DEMO_TTL_MINUTES,
            "channels": [DEMO_CHANNEL],
            "member_id": request.POST.get("member_id", ""),
        }
    )
    if not serializer.is_valid():
        return JsonResponse({"errors": serializer.errors}, status=400)
    data = serializer.validated_data
    issued = services.chat_token_issue(
        project=project,
        ttl_minutes=data["ttl"],
        channels=data["channels"],
        member_id=data["member_id"],
        state={"name": data["member_id"]},
        relay_url=relay_url(request),
        client_ip=client_ip(request),
    )
    return JsonResponse(
        {"token": issued.token, "channel": DEMO_CHANNEL, "member_id": data["member_id"]}
    )
