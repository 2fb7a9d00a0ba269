"""The channels notices go out on: e-mail, Slack and Google Chat, each behind `base.Channel`.

A channel is on when the deployment's settings turn it on (e-mail always is). A person gets each
notice once on every channel that is on, reaches them, and that they have not turned off on their
settings page (`ChannelPreference`); e-mail stays on for someone whom no other channel reaches, so
nobody turns every notice off by mistake.
"""

from functools import cache

from django.utils.module_loading import import_string

from approvals.models import Channel as Names
from approvals.models import ChannelPreference
from approvals.notify.channels.base import SENT, Channel, ChannelDown, Result

__all__ = [
    "SENT",
    "Channel",
    "ChannelDown",
    "Result",
    "all_channels",
    "channel",
    "for_people",
    "for_person",
]

CLASSES = {
    Names.EMAIL: "approvals.notify.channels.email.EmailChannel",
    Names.SLACK: "approvals.notify.channels.slack.SlackChannel",
    Names.GOOGLE_CHAT: "approvals.notify.channels.google_chat.GoogleChatChannel",
}


@cache
def channel(name: str) -> Channel:
    """The channel called `name` (one instance per process: a chat client is reused)."""
    return import_string(CLASSES[Names(name)])()


def all_channels() -> list[Channel]:
    """Every channel, on or not, in the order the settings page lists them."""
    return [channel(name) for name in CLASSES]


def turned_off(email_key: str) -> set[str]:
    """The channels the person with this mailbox turned off."""
    return turned_off_among({email_key}).get(email_key, set())


def turned_off_among(email_keys: set[str]) -> dict[str, set[str]]:
    """The channels each of these people turned off, by mailbox (those who turned none off are
    left out)."""
    preferences = ChannelPreference.objects.filter(email_key__in=email_keys)
    return {preference.email_key: set(preference.off) for preference in preferences}


def for_person(email_key: str) -> list[Channel]:
    """The channels a notice to this person goes out on: those that reach them, less those they
    turned off; e-mail when that leaves none."""
    return for_people({email_key})[email_key]


def for_people(email_keys: set[str]) -> dict[str, list[Channel]]:
    """`for_person` of each of these mailboxes, in a query or two per channel for all of them."""
    off = turned_off_among(email_keys)
    reaching = [(c, c.reaching(email_keys)) for c in all_channels() if c.is_on()]
    return {
        key: _chosen([c for c, reached in reaching if key in reached], off.get(key, set()))
        for key in email_keys
    }


def _chosen(reach: list[Channel], off: set[str]) -> list[Channel]:
    """Of the channels that reach a person, those they left on; e-mail when that leaves none."""
    chosen = [c for c in reach if c.name not in off]
    if chosen or not reach:
        return chosen
    return [c for c in reach if c.name == Names.EMAIL] or reach[:1]
