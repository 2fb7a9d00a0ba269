"""The chat platforms' endpoints (namespace `approvals`, stitched in `approvals/urls.py`)."""

from django.urls import path

from approvals.integrations import google_chat, slack

urlpatterns = [
    path("integrations/slack/interactions", slack.interactions, name="slack-interactions"),
    path("integrations/google-chat/events", google_chat.events, name="google-chat-events"),
]
