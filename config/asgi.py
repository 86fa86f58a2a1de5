"""ASGI entry point: HTTP through Django, WebSockets through Channels' router."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from limits.asgi import LimitsBeforeViews  # noqa: E402
from tokens.asgi import RequestBodyLimit, redact_query_tokens  # noqa: E402
from tokens.origins import TokenSocketOriginValidator  # noqa: E402

redact_query_tokens()  # the voice socket's ?token= stays out of uvicorn's log

http_app = django_asgi_app
if settings.ROOMKEY_SERVE_STATIC:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    http_app = ASGIStaticFilesHandler(django_asgi_app)
http_app = RequestBodyLimit(LimitsBeforeViews(http_app))

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": TokenSocketOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
