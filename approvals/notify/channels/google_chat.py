"""Google Chat: card messages in the person's direct-message space with the app, through the Chat
API called as the app (contract: "Chat channels")."""

from django.conf import settings

from approvals.models import Channel as Names
from approvals.models import ChatAccount
from approvals.notify.channels.base import Channel


class GoogleChatChannel(Channel):
    name = Names.GOOGLE_CHAT

    def is_on(self) -> bool:
        return bool(settings.APPROVALS_GOOGLE_CHAT_AUDIENCE)

    def reaches(self, email_key: str) -> bool:
        # With app authentication the Chat API finds no one by e-mail: only the direct-message
        # space learned when the person added the app (ADDED_TO_SPACE) reaches them.
        return ChatAccount.objects.filter(channel=self.name, email_key=email_key).exists()

    def send(self, notices):
        raise NotImplementedError  # issue 16: the Google Chat channel
