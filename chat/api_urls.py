"""Routes of the chat API for API consumers (/api/v1/addresses, /api/v1/conversations)."""

from rest_framework.routers import SimpleRouter

from .api_views import AddressViewSet, ConversationViewSet

router = SimpleRouter()
router.trailing_slash = "/?"  # the documented paths have none; a trailing slash is fine too
router.register("api/v1/addresses", AddressViewSet, basename="chat-address")
router.register("api/v1/conversations", ConversationViewSet, basename="chat-conversation")

urlpatterns = router.urls
