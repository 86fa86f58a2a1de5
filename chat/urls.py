from django.urls import path

from . import fabric, views

urlpatterns = [
    path("api/chat/tokens", views.ChatTokenView.as_view(), name="chat-tokens"),
    path(
        "api/fabric/conversations/<text:address_id>/messages",
        fabric.ConversationMessagesView.as_view(),
        name="fabric-conversation-messages",
    ),
    path(
        "api/fabric/conversations/join",
        fabric.JoinConversationView.as_view(),
        name="fabric-conversation-join",
    ),
    path("api/fabric/messages", fabric.SendMessageView.as_view(), name="fabric-messages"),
    path("api/fabric/addresses", fabric.AddressListView.as_view(), name="fabric-addresses"),
    path(
        "api/fabric/addresses/<text:address_id>",
        fabric.AddressView.as_view(),
        name="fabric-address",
    ),
]
