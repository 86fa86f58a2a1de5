"""The development-only chat demo page (chat.demo)."""

from django.urls import path

from . import demo

urlpatterns = [
    path("demo/chat", demo.ChatDemoView.as_view(), name="chat-demo"),
    path("demo/chat/token", demo.chat_demo_token, name="chat-demo-token"),
]
