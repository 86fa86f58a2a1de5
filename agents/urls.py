from django.urls import path

from . import views

urlpatterns = [
    # --- Issue 3: seed 003, seed 004, LiveKit token source ---
    path("v1/session-token", views.SessionTokenView.as_view(), name="session-token"),
    path("web_call/get_token", views.WebCallTokenView.as_view(), name="web-call-token"),
    path(
        "api/v1/livekit/token-source",
        views.TokenSourceView.as_view(),
        name="livekit-token-source",
    ),
]
