import re

from django.contrib import admin
from django.urls import include, path, re_path

from tokens import errors

from .views import LandingView

urlpatterns = [
    path("", LandingView.as_view(), name="landing"),
    path("admin/", admin.site.urls),
    path("", include("tokens.urls")),
    path("", include("agents.urls")),
    path("", include("chat.urls")),
    path("", include("chat.api_urls")),
    path("", include("chat.demo_urls")),
    # Last: any other path under an API prefix is that contract's 404, never an HTML page.
    *(
        re_path(rf"^{re.escape(prefix.lstrip('/'))}", errors.unrouted)
        for prefix in errors.api_prefixes()
    ),
]

handler400 = errors.bad_request
handler404 = errors.page_not_found
handler500 = errors.server_error
