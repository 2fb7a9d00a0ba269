"""The one interface every notice channel implements (like Django's e-mail backends)."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from approvals.models import Notice


@dataclass(frozen=True)
class Result:
    """What became of one notice on its channel.

    `sent`: it reached the person. Otherwise `error` says why in a line (no secrets in it), and
    `retry` whether trying again later may help (the platform down, rate-limited) or not (no such
    person on the platform). `ref` is the channel's handle of the message it sent, kept on the
    notice so that a later one can update the message in place.
    """

    sent: bool
    error: str = ""
    retry: bool = True
    ref: dict = field(default_factory=dict)


SENT = Result(sent=True)


class ChannelDown(Exception):
    """The whole channel failed for this batch (a connection that could not be opened): every
    notice in it is due again later."""


class Channel:
    """A way to reach people. Subclasses set `name` (an `approvals.models.Channel` value) and
    implement `is_on` and `send`; `reaching` when not everyone on it can be reached."""

    name: str = ""

    @property
    def label(self) -> str:
        from approvals.models import Channel as Names

        return Names(self.name).label

    def is_on(self) -> bool:
        """Whether the deployment turned the channel on (its settings are set)."""
        raise NotImplementedError

    def reaching(self, email_keys: set[str]) -> set[str]:
        """Those of these mailboxes whose people can be sent notices here, as far as the app
        knows before trying (Google Chat: only once they added the app); one query for many."""
        return set(email_keys)

    def reaches(self, email_key: str) -> bool:
        """Whether the person with this mailbox can be sent notices here (`reaching`)."""
        return email_key in self.reaching({email_key})

    def send(self, notices: Sequence[Notice]) -> list[Result]:
        """Send each notice (all of one request, occasion and channel); one Result each, in
        order. A failure of one notice is its Result; ChannelDown fails them all."""
        raise NotImplementedError
