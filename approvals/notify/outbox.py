"""The notification outbox: every notice is a `Notice` row, written in the transaction that made
it due, and sent from here, each once, on each of its person's channels.

`queue` writes the rows (one per person and channel, `approvals.notify.channels.for_person`),
`queue_all` those of many occasions at once; once that transaction commits, `send` tries them
at once (within a pass, `one_pass`, at the pass's end, many requests' notices over one
connection per channel, settled in one transaction), and `send_due` (the last
step of `manage.py send_notifications`) sends whatever is still due: a row whose process died
before its attempt, and a row whose channel failed, which is due again `RETRY_DELAY` later for
that channel only. A row is claimed before it is sent (a conditional UPDATE, like the callbacks'
`delivery.claim_due`), so two passes at once never send it twice.

What is sent is recorded on the request's audit log, per occasion and channel: `notified` or
`reminded` with the recipients, `notify_failed` with the error; `outcome_mailed` and
`outcome_mail_failed` for the requester. A notice to the deciders of a request that closed
meanwhile is dropped, and on a retry so is one to a person who may no longer decide it; a
failing one is given up `GIVE_UP_AFTER` after it was queued, and one a chat channel gave up on
goes by e-mail when no other channel has it.
"""

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import groupby

from django.db import transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone

from approvals import emails, permissions
from approvals.models import AuditEvent, Channel, Notice
from approvals.notify import channels

logger = logging.getLogger(__name__)

RETRY_DELAY = timedelta(minutes=5)  # a notice whose channel failed is due again this much later
GIVE_UP_AFTER = timedelta(days=1)  # ... until this long after it was queued
LEASE = timedelta(minutes=5)  # a claimed notice is due again this long after, if never recorded
# Notices a pass sends per call of a channel (one SMTP connection for that many mails).
SEND_BATCH = 500
# What recording a sent notice changes (`_store_sent`).
SENT_FIELDS = ["state", "due_at", "claim", "sent_at", "attempts", "ref", "last_error"]

Purpose = Notice.Purpose
SENT_KIND = {
    Purpose.NEW: AuditEvent.Kind.NOTIFIED,
    Purpose.REMINDER: AuditEvent.Kind.REMINDED,
    Purpose.ESCALATION: AuditEvent.Kind.NOTIFIED,
    Purpose.REASSIGNED: AuditEvent.Kind.NOTIFIED,
    Purpose.OUTCOME: AuditEvent.Kind.OUTCOME_MAILED,
}
FAILED_KIND = {
    **dict.fromkeys(Notice.FOR_DECIDERS, AuditEvent.Kind.NOTIFY_FAILED),
    Purpose.OUTCOME: AuditEvent.Kind.OUTCOME_MAIL_FAILED,
}


@dataclass(frozen=True)
class Recipient:
    """Whom a notice is for: their address, their account when they have one, and whom they
    stand in for as a delegate."""

    email: str
    user: object = None
    on_behalf_of: str = ""

    @property
    def email_key(self) -> str:
        try:
            return emails.canonical(self.email)
        except emails.InvalidAddress:
            return ""


def deciders(people: Iterable[permissions.Decider]) -> list[Recipient]:
    """The recipients of a notice to the deciders `permissions.deciders` found."""
    return [Recipient(p.email, p.user, p.on_behalf_of) for p in people]


@dataclass(frozen=True)
class Occasion:
    """One reason to tell people something: what for, whom, and what about (a request, or a
    delegation); `payload` adds fields to its audit events."""

    purpose: str
    recipients: Sequence[Recipient]
    approval: object = None
    delegation: object = None
    payload: dict | None = None


def queue(
    purpose: str,
    recipients: Iterable[Recipient],
    *,
    approval=None,
    delegation=None,
    payload: dict | None = None,
    send_now: bool = True,
    only_channel: str = "",
) -> list[Notice]:
    """Write the notices of one occasion, one per recipient and channel (or on `only_channel`),
    in the caller's transaction; with `send_now`, try them as soon as it commits."""
    occasion = Occasion(purpose, list(recipients), approval, delegation, payload)
    return queue_all([occasion], send_now=send_now, only_channel=only_channel)


def queue_all(
    occasions: Sequence[Occasion], *, send_now: bool = True, only_channel: str = ""
) -> list[Notice]:
    """`queue` for many occasions at once (a pass's hundreds): their people's channels read
    together, their rows written in one INSERT."""
    now = timezone.now()
    keys = {r.email_key for occasion in occasions for r in occasion.recipients if r.email_key}
    chosen = channels.for_people(keys)
    rows = [
        Notice(
            request=occasion.approval,
            delegation=occasion.delegation,
            purpose=occasion.purpose,
            channel=channel.name,
            user=recipient.user,
            email=recipient.email.strip(),
            email_key=recipient.email_key,
            on_behalf_of=recipient.on_behalf_of,
            payload=occasion.payload or {},
            created_at=now,
            due_at=now,
        )
        for occasion in occasions
        for recipient in occasion.recipients
        if recipient.email_key
        for channel in chosen[recipient.email_key]
        if channel.name == (only_channel or channel.name)
    ]
    Notice.objects.bulk_create(rows)
    if rows and send_now:
        ids = [row.pk for row in rows]
        batch = getattr(_pass, "ids", None)
        # In a pass (`one_pass`) the rows wait for its end, to go out with the others.
        later = batch.extend if batch is not None else send
        transaction.on_commit(lambda: later(ids), robust=True)
    return rows


_pass = threading.local()


@contextlib.contextmanager
def one_pass():
    """Within it, the notices queued (once their transaction commits) are sent together as it
    ends: one connection per channel for every `SEND_BATCH` notices of the pass, instead of one
    per occasion. A pass that fails leaves its rows due, for `send_due`."""
    if getattr(_pass, "ids", None) is not None:
        yield  # already inside a pass: its end sends these too
        return
    _pass.ids = []
    try:
        yield
        ids = _pass.ids
    finally:
        _pass.ids = None
    for start in range(0, len(ids), SEND_BATCH):
        send(ids[start : start + SEND_BATCH])


def send_due(limit: int = 500) -> int:
    """Send the notices that are due; return how many were taken."""
    due = (
        Notice.objects.filter(state=Notice.State.DUE, due_at__lte=timezone.now())
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    return send(list(due))


def send(ids: Sequence[int]) -> int:
    """Claim the due notices among `ids`, send them on their channels and record what became of
    each; return how many this call took (another pass may hold the rest)."""
    if not ids:
        return 0
    claim = uuid.uuid4()
    now = timezone.now()
    Notice.objects.filter(pk__in=ids, state=Notice.State.DUE, due_at__lte=now).update(
        claim=claim, due_at=now + LEASE
    )
    taken = list(
        Notice.objects.filter(claim=claim)
        .select_related("request", "delegation", "user", "updates")
        .order_by("channel", "request_id", "purpose", "pk")
    )
    # What the rules read of each request (`permissions.rules.Facts`), for all of them at once.
    approvals = [notice.request for notice in taken if notice.request_id]
    prefetch_related_objects(approvals, "assignees", "decisions")
    for name, on_channel in groupby(taken, key=lambda n: n.channel):
        occasions = [
            list(occasion)
            for _, occasion in groupby(on_channel, key=lambda n: (n.request_id, n.purpose))
        ]
        _send_on_channel(channels.channel(name), occasions)
    return len(taken)


def _send_on_channel(channel, occasions: list[list[Notice]]) -> None:
    """Send the notices of several occasions on one channel in one call (one connection), then
    record each occasion's results, in one transaction."""
    outcomes: dict[int, channels.Result | str] = {}  # by notice; a str says why it was dropped
    for occasion in occasions:
        for notice in occasion:
            if why := _not_needed(notice, channel):
                outcomes[notice.pk] = why
    wanted = [n for occasion in occasions for n in occasion if n.pk not in outcomes]
    if wanted:
        outcomes.update(zip([n.pk for n in wanted], _results(channel, wanted), strict=True))
    with transaction.atomic():
        _settle(occasions, outcomes)


def _results(channel, notices: list[Notice]) -> list[channels.Result]:
    """The channel's results for `notices`, one each."""
    try:
        return channel.send(notices)
    except channels.ChannelDown as down:
        return [channels.Result(False, str(down))] * len(notices)
    except Exception as exc:  # a channel's bug fails its own notices only
        logger.exception("The %s channel failed", channel.name)
        return [channels.Result(False, f"{type(exc).__name__}: {exc}"[:300])] * len(notices)


def _not_needed(notice: Notice, channel: channels.Channel) -> str:
    """Why `notice` is no longer to be sent ("" when it is): its channel was turned off, the
    request closed, or (on a retry) its person may no longer decide it."""
    if not channel.is_on():
        return f"{channel.label} is turned off."
    if notice.purpose not in Notice.FOR_DECIDERS:
        return ""
    if not notice.request.is_open:
        return "The request closed before it was sent."
    if notice.attempts and notice.user is not None:
        refusal = permissions.decider_capacity(notice.user, notice.request).refusal
        if refusal:
            return refusal[:300]
    return ""


def _settle(occasions: list[list[Notice]], outcomes: dict) -> None:
    """Store each notice's outcome and write each occasion's audit events (appended together)
    and log lines, in the caller's transaction."""
    now = timezone.now()
    all_sent, events = [], []
    for occasion in occasions:
        sent, failed = [], []
        for notice in occasion:
            result = outcomes[notice.pk]
            claimed = Notice.objects.filter(pk=notice.pk, claim=notice.claim)
            if isinstance(result, str):
                claimed.update(
                    state=Notice.State.DROPPED, due_at=None, claim=None, last_error=result
                )
            elif result.sent:
                sent.append((notice, result))
            else:
                retry = result.retry and now - notice.created_at < GIVE_UP_AFTER
                claimed.update(
                    state=Notice.State.DUE if retry else Notice.State.FAILED,
                    due_at=now + RETRY_DELAY if retry else None,
                    claim=None,
                    attempts=notice.attempts + 1,
                    last_error=result.error[:300],
                )
                failed.append((notice, result.error, retry))
        all_sent += sent
        events += _record(occasion[0], [notice for notice, _ in sent], failed, now)
        _by_email_instead([n for n, _, retry in failed if not retry], now)
    _store_sent(all_sent, now)
    AuditEvent.objects.append_all(events)


def _by_email_instead(given_up: list[Notice], now) -> list[Notice]:
    """Queue by e-mail each notice a chat channel gave up on, when no other channel has it
    (sent or on its way): someone Slack does not know, say, still hears of the request."""
    rows = []
    for notice in given_up:
        if notice.channel == Channel.EMAIL or notice.purpose == Purpose.UPDATE:
            continue
        siblings = Notice.objects.filter(
            request_id=notice.request_id,
            delegation_id=notice.delegation_id,
            purpose=notice.purpose,
            email_key=notice.email_key,
            created_at=notice.created_at,
            state__in=[Notice.State.SENT, Notice.State.DUE],
        ).exclude(pk=notice.pk)
        if siblings.exists() or not channels.channel(Channel.EMAIL).reaches(notice.email_key):
            continue
        notice.pk, notice.channel, notice.state = None, Channel.EMAIL, Notice.State.DUE
        notice.due_at, notice.claim, notice.attempts, notice.last_error = now, None, 0, ""
        notice.ref, notice.sent_at = {}, None
        rows.append(notice)
    return Notice.objects.bulk_create(rows)


def _store_sent(sent: list, now) -> None:
    """Mark the sent notices sent, with the channel's handle of each message (a chat
    message's; none for a mail), in one UPDATE: those whose claim still holds (a claim lost,
    its lease run out, is the later attempt's to record)."""
    if not sent:
        return
    claim = sent[0][0].claim
    ids = [notice.pk for notice, _ in sent]
    held = set(
        Notice.objects.select_for_update()
        .filter(pk__in=ids, claim=claim)
        .values_list("pk", flat=True)
    )
    rows = []
    for notice, result in sent:
        if notice.pk not in held:
            continue
        notice.state, notice.sent_at, notice.attempts = Notice.State.SENT, now, notice.attempts + 1
        notice.due_at = notice.claim = None
        notice.ref, notice.last_error = result.ref, ""
        rows.append(notice)
    Notice.objects.bulk_update(rows, SENT_FIELDS)


def _record(first: Notice, sent: list[Notice], failed: list, now) -> list[AuditEvent]:
    """The log lines of one occasion on one channel; return its audit events, to store."""
    fields = {"purpose": first.purpose, "channel": first.channel, **first.payload}
    log_fields = {
        "request_id": str(first.request_id) if first.request_id else None,
        "delegation_id": first.delegation_id,
        "purpose": first.purpose,
        "channel": first.channel,
    }
    events = []
    if sent:
        events += _audit(first, SENT_KIND, {"recipients": [n.email for n in sent], **fields}, now)
        logger.info(
            "Sent the %s notice of %s to %d person(s) by %s",
            first.purpose,
            _subject(first),
            len(sent),
            first.channel,
            extra={"json_fields": {**log_fields, "recipients": len(sent)}},
        )
    if failed:
        error = failed[0][1]
        retry = any(again for _, _, again in failed)
        recipients = [n.email for n, _, _ in failed]
        events += _audit(
            first,
            FAILED_KIND,
            {"recipients": recipients, "error": error, "retry": retry, **fields},
            now,
        )
        logger.warning(
            "Could not send the %s notice of %s to %d person(s) by %s: %s; %s",
            first.purpose,
            _subject(first),
            len(failed),
            first.channel,
            error,
            f"trying again in {RETRY_DELAY.seconds // 60} minutes" if retry else "giving up",
            extra={
                "json_fields": {**log_fields, "failed": len(failed), "error": error, "retry": retry}
            },
        )
    return events


def _audit(first: Notice, kinds: dict, payload: dict, now) -> list[AuditEvent]:
    """The audit event of a request's notices, where its purpose has one (an update of a chat
    message and a delegate's notice have none)."""
    if not first.request_id or first.purpose not in kinds:
        return []
    return [
        AuditEvent(
            request=first.request,
            kind=kinds[first.purpose],
            actor="system",
            at=now,
            payload=payload,
        )
    ]


def _subject(notice: Notice) -> str:
    if notice.request_id:
        return f"request {notice.request_id}"
    return f"delegation {notice.delegation_id}"


CHAT = {"slack", "google_chat"}


def update_messages(approval, *, email_keys: list[str] | None = None) -> list[Notice]:
    """Queue the updates of the chat messages sent about `approval` (all of them, or those to
    the people named by mailbox), in the caller's transaction: after a decision, a cancel or an
    expiry, each message says what happened and offers no button the server would refuse. Sent
    by the next `send_notifications` pass, never inside the call that decided."""
    sent = Notice.objects.filter(
        request=approval,
        channel__in=CHAT,
        purpose__in=Notice.FOR_DECIDERS,
        state=Notice.State.SENT,
    )
    if email_keys is not None:
        sent = sent.filter(email_key__in=email_keys)
    now = timezone.now()
    rows = [
        Notice(
            request=approval,
            purpose=Purpose.UPDATE,
            channel=message.channel,
            user_id=message.user_id,
            email=message.email,
            email_key=message.email_key,
            on_behalf_of=message.on_behalf_of,
            updates=message,
            created_at=now,
            due_at=now,
        )
        for message in sent
    ]
    return Notice.objects.bulk_create(rows)
