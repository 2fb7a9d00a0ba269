"""Slack: Block Kit direct messages through slack_sdk's WebClient (contract: "Chat channels")."""

from django.conf import settings

from approvals.models import Channel as Names
from approvals.notify.channels.base import Channel


class SlackChannel(Channel):
    name = Names.SLACK

    def is_on(self) -> bool:
        return bool(settings.APPROVALS_SLACK_BOT_TOKEN and settings.APPROVALS_SLACK_SIGNING_SECRET)

    def send(self, notices):
        raise NotImplementedError  # issue 16: the Slack channel
