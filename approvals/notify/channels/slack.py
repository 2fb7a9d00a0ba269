"""Slack: Block Kit direct messages through slack_sdk's WebClient (contract: "Chat channels").

A person is found by their e-mail (`users.lookupByEmail`, then `conversations.open`), once: the
direct message is kept as their `ChatAccount`. Every notice has a message: a decider's with its
buttons (`approvals.notify.slack_layout`), the requester's outcome, a delegate's notice, and the
update of a message already sent (`chat.update` at the `ref` it was sent with).

Slack down (HTTP 5xx, no connection) or rate-limited fails the notice for a retry by the outbox;
the rest of the batch is not tried once Slack is down. A bot token Slack refuses fails the whole
batch (`ChannelDown`) with a sentence saying which setting to check, never the token itself.
"""

from collections.abc import Sequence
from datetime import timedelta
from urllib.error import URLError

from django.conf import settings
from django.utils import timezone
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from approvals.models import Channel as Names
from approvals.models import ChatAccount, Notice
from approvals.notify import chat, slack_layout
from approvals.notify.channels.base import Channel, ChannelDown, Result

ABSENT_FOR = timedelta(days=1)  # someone not in the workspace is looked up again this much later
TIMEOUT_SECONDS = 5
# A rate limit that lifts sooner is waited out; a longer one is retried later by the outbox.
BRIEF_WAIT_SECONDS = 2
TOKEN_REFUSED = {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
NOT_ON_SLACK = {"users_not_found", "user_not_found", "user_disabled"}
# Errors that trying again cannot mend: the person or the message is not there, or Slack refuses
# what the app sent (a bug to fix, not an outage).
FINAL = NOT_ON_SLACK | {"message_not_found", "cant_update_message", "invalid_blocks", "no_text"}


class BriefRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Wait out a 429 only when Slack's Retry-After is short: a notice can wait for the outbox's
    next pass, a person clicking a button cannot wait at all."""

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        after = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), ["0"])
        try:
            return int(after[0] if isinstance(after, list) else after) <= BRIEF_WAIT_SECONDS
        except ValueError:
            return False


class SlackDown(Exception):
    """Slack did not answer, or answered 5xx or 429: try again later."""


_clients: dict[tuple[str, str], WebClient] = {}


def client() -> WebClient:
    """The process's WebClient for the configured bot token and API URL."""
    key = (settings.APPROVALS_SLACK_BOT_TOKEN, settings.APPROVALS_SLACK_API_URL)
    if key not in _clients:
        _clients[key] = WebClient(
            token=key[0],
            base_url=key[1],
            timeout=TIMEOUT_SECONDS,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=1),
                BriefRateLimitRetryHandler(max_retry_count=1),
            ],
        )
    return _clients[key]


def call(method: str, **arguments) -> dict:
    """One Web API call's answer; SlackApiError for Slack's `ok: false` (the bot token refused:
    ChannelDown), SlackDown when Slack is down or rate-limited."""
    try:
        # The typed methods send each in the body format Slack takes for it (form or JSON).
        return getattr(client(), method.replace(".", "_"))(**arguments).data
    except SlackApiError as refused:
        status = refused.response.status_code
        error = refused.response.get("error", "") if isinstance(refused.response.data, dict) else ""
        if status == 429 or status >= 500:
            raise SlackDown(f"Slack {method}: HTTP {status} {error}".strip()) from None
        if error in TOKEN_REFUSED:
            raise ChannelDown(
                f"Slack refused the bot token ({error}): check APPROVALS_SLACK_BOT_TOKEN"
            ) from None
        raise
    except (URLError, OSError) as unreachable:
        reason = getattr(unreachable, "reason", unreachable)
        raise SlackDown(f"Slack {method}: no answer ({type(reason).__name__})") from None


def slack_error(refused: SlackApiError) -> str:
    data = refused.response.data if isinstance(refused.response.data, dict) else {}
    return str(data.get("error") or f"HTTP {refused.response.status_code}")


class SlackChannel(Channel):
    name = Names.SLACK

    def is_on(self) -> bool:
        return bool(settings.APPROVALS_SLACK_BOT_TOKEN and settings.APPROVALS_SLACK_SIGNING_SECRET)

    def reaching(self, email_keys: set[str]) -> set[str]:
        """Everyone, but someone Slack had no user for lately: they get e-mail instead (and are
        looked up again `ABSENT_FOR` later: they may have joined)."""
        absent = ChatAccount.objects.filter(
            channel=self.name,
            email_key__in=email_keys,
            conversation="",
            learned_at__gt=timezone.now() - ABSENT_FOR,
        ).values_list("email_key", flat=True)
        return set(email_keys) - set(absent)

    def send(self, notices: Sequence[Notice]) -> list[Result]:
        """Each notice in turn; once Slack is down, the rest wait for the next pass."""
        results: list[Result] = []
        down = ""
        known = _conversations({notice.email_key for notice in notices})
        for notice in notices:
            if down:
                results.append(Result(False, down, retry=True))
                continue
            try:
                results.append(Result(True, ref=_send(notice, known)))
            except SlackDown as failure:
                down = str(failure)
                results.append(Result(False, down, retry=True))
            except SlackApiError as refused:
                error = slack_error(refused)
                if error == "channel_not_found":  # found anew for this person's next notice
                    known.pop(notice.email_key, None)
                results.append(_refused(notice, error))
            except NoMessage as missing:
                results.append(Result(False, str(missing), retry=False))
        return results


def _refused(notice: Notice, error: str) -> Result:
    """What Slack's refusal means for the notice: tried again later, or not."""
    if notice.purpose == Notice.Purpose.UPDATE:  # the message, or its conversation, is gone
        final = error in FINAL or error == "channel_not_found"
        return Result(False, f"Slack: {error}", retry=not final)
    if error == "channel_not_found":  # a direct message kept from before: found anew next time
        ChatAccount.objects.filter(channel=Names.SLACK, email_key=notice.email_key).delete()
    return Result(False, f"Slack: {error}", retry=error not in FINAL)


class NoMessage(Exception):
    """An update of a message that was never sent, or not on Slack."""


def _send(notice: Notice, known: dict[str, str]) -> dict:
    """Send one notice; the message's `{"channel", "ts"}`."""
    if notice.purpose == Notice.Purpose.UPDATE:
        ref = notice.updates.ref if notice.updates else {}
        if not ref.get("channel") or not ref.get("ts"):
            raise NoMessage("No Slack message to update.")
        summary = chat.about(notice)
        sent = call(
            "chat.update",
            channel=ref["channel"],
            ts=ref["ts"],
            text=summary.fallback,
            blocks=slack_layout.decider_blocks(summary, notice.request_id),
        )
        return {"channel": sent["channel"], "ts": sent["ts"]}
    text, blocks = _content(notice)
    channel = known.get(notice.email_key) or conversation(notice)
    known[notice.email_key] = channel
    sent = call("chat.postMessage", channel=channel, text=text, blocks=blocks)
    return {"channel": sent["channel"], "ts": sent["ts"]}


def _content(notice: Notice) -> tuple[str, list[dict] | None]:
    """The text (Slack's notification and fallback) and the blocks of a new message."""
    if notice.purpose in Notice.FOR_DECIDERS:
        summary = chat.about(notice)
        return summary.fallback, slack_layout.decider_blocks(summary, notice.request_id)
    if notice.purpose == Notice.Purpose.OUTCOME:
        said = chat.requester_text(notice.request)
        return said.splitlines()[0], slack_layout.requester_blocks(notice.request)
    if notice.purpose == Notice.Purpose.DELEGATION:
        return slack_layout.delegation_text(notice.delegation), None
    raise NoMessage(f"No Slack message for a {notice.purpose!r} notice.")


def _conversations(email_keys: set[str]) -> dict[str, str]:
    """The direct messages with the app already known for these people, by mailbox."""
    known = ChatAccount.objects.filter(channel=Names.SLACK, email_key__in=email_keys)
    return dict(known.exclude(conversation="").values_list("email_key", "conversation"))


def conversation(notice: Notice) -> str:
    """The person's direct message with the app: known, or found by their e-mail and kept (and
    someone Slack has no user for kept as such, with no conversation)."""
    known = ChatAccount.objects.filter(channel=Names.SLACK, email_key=notice.email_key).first()
    if known and known.conversation:
        return known.conversation
    try:
        user_id = call("users.lookupByEmail", email=notice.email)["user"]["id"]
    except SlackApiError as refused:
        if slack_error(refused) in NOT_ON_SLACK:
            _remember(notice, "", "")
        raise
    channel = call("conversations.open", users=user_id)["channel"]["id"]
    _remember(notice, user_id, channel)
    return channel


def _remember(notice: Notice, user_id: str, channel: str) -> None:
    ChatAccount.objects.update_or_create(
        channel=Names.SLACK,
        email_key=notice.email_key,
        defaults={"user_id": user_id, "conversation": channel, "learned_at": timezone.now()},
    )
