from django.urls import path

from . import views

urlpatterns = [
    path("api/v1/tokens/introspect", views.IntrospectView.as_view(), name="token-introspect"),
    path("api/v1/tokens/revoke", views.RevokeView.as_view(), name="token-revoke"),
]
