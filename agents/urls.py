from django.urls import path

from . import views

urlpatterns = [
    # --- Call sessions and tool tokens (seed 001), Roomkey's own API ---
    path("api/v1/sessions", views.CallSessionListView.as_view(), name="call-sessions"),
    path(
        "api/v1/sessions/<text:call_id>",
        views.CallSessionDetailView.as_view(),
        name="call-session",
    ),
    path(
        "api/v1/sessions/<text:call_id>/end",
        views.CallSessionEndView.as_view(),
        name="call-session-end",
    ),
    path(
        "api/v1/sessions/<text:call_id>/metadata",
        views.MetadataView.as_view(),
        name="call-session-metadata",
    ),
    path(
        "api/v1/sessions/<text:call_id>/metadata/<text:key>",
        views.MetadataKeyView.as_view(),
        name="call-session-metadata-key",
    ),
    path(
        "api/v1/sessions/<text:call_id>/tool-tokens",
        views.ToolTokenIssueView.as_view(),
        name="tool-tokens",
    ),
    path(
        "api/v1/tool-tokens/validate",
        views.ToolTokenValidateView.as_view(),
        name="tool-token-validate",
    ),
    path("api/v1/tool-tokens/debug", views.ToolTokenDebugView.as_view(), name="tool-token-debug"),
    path(
        "api/v1/tool-secret/rotate",
        views.ToolSecretRotateView.as_view(),
        name="tool-secret-rotate",
    ),
    # --- Voice session tokens (seed 003), web calls (seed 004), LiveKit token source ---
    path("v1/session-token", views.SessionTokenView.as_view(), name="session-token"),
    path("web_call/get_token", views.WebCallTokenView.as_view(), name="web-call-token"),
    path(
        "api/v1/livekit/token-source",
        views.TokenSourceView.as_view(),
        name="livekit-token-source",
    ),
]
