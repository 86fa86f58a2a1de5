"""The site's landing page: what Roomkey serves, with copy-paste examples for the demo project,
and links to the admin and (while DEBUG is on) the chat demo."""

from django.conf import settings
from django.views.generic import TemplateView

from tokens import selectors


class LandingView(TemplateView):
    template_name = "landing.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["base_url"] = self.request.build_absolute_uri("/").rstrip("/")
        context["demo_project"] = selectors.demo_project()
        # chat.demo serves the demo page only while DEBUG is on: no link to a 404 otherwise.
        context["chat_demo"] = settings.DEBUG and context["demo_project"] is not None
        return context
