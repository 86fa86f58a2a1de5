from django.contrib import admin
from django.urls import include, path

from tokens.views import LandingView

urlpatterns = [
    path("", LandingView.as_view(), name="landing"),
    path("admin/", admin.site.urls),
    path("", include("tokens.urls")),
    path("", include("agents.urls")),
    path("", include("chat.urls")),
    path("", include("chat.api_urls")),
    path("", include("chat.demo_urls")),
]
