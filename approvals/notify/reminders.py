"""When the people who may decide are told: the first notice, reminders and escalations, and
the passes that take each occasion and queue its notices (`notify.notices`, `notify.outbox`).

Every notice about a request leaves from `manage.py send_notifications` (a Cloud Run job on
Cloud Scheduler, or `--loop` locally), never from inside the workflow's registration call: a slow
or failing mail server or chat platform cannot slow down or fail a registration, and a month-end
batch of registrations is not held up by notices (docs/benchmarks.md).

A request keeps the time of its next notice in `next_reminder_at`: registration sets it to now,
for the first notice; each one moves it to the next reminder point, so finding what is due is one
indexed query. Reminder points come from `APPROVALS_REMINDERS`, a comma-separated list where each
point is a share of the request's lifetime (`50%`: halfway to expiry) or a time before expiry
(`1d`, `4h`, `30m`, `90s`). The default, `50%,1d`, reminds halfway and a day before the request
expires. Points before the request was registered (a `1d` point on a two-hour request) are
skipped. A notice whose channel fails is retried by the outbox, for that person and channel only.

An escalation is due once `escalates_at` has passed while `escalated_at` is still empty:
`escalate_due` tells the escalation targets they may now decide (they may from `escalates_at` on
whether or not they were told yet, see `approvals.permissions`). Each request is locked while its
turn is recorded and its notices queued, so two passes at once never queue the same notice
twice; they go out once that commits. First notices and reminders are taken `REMIND_BATCH`
requests to a transaction (a pass skips those another holds), their deciders found together.
Closed requests get nothing.
"""

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone

from approvals.models import ApprovalRequest, Assignee, AuditEvent, open_q
from approvals.notify import notices, outbox
from approvals.wire import iso_utc

logger = logging.getLogger(__name__)

# The format of `APPROVALS_REMINDERS`: its units, one point, and the format in words for whoever
# sets it (the hint of the configuration check `approvals.E004`).
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
POINT_RE = re.compile(
    r"(?:(?P<percent>[0-9]{1,2}(?:\.[0-9]+)?)%|(?P<number>[0-9]+)(?P<unit>[smhd]))"
)
FORMAT_HINT = (
    "Use comma-separated shares of a request's lifetime and times before its expiry, such as "
    "'50%,1d' (the default) or '25%,75%,4h'; leave it empty for no reminders."
)


@dataclass(frozen=True)
class Point:
    """One reminder point: a share of the lifetime, or a time before expiry."""

    text: str
    share: float | None = None
    before_expiry: timedelta | None = None

    def at(self, created_at: datetime, expires_at: datetime) -> datetime:
        if self.share is not None:
            return created_at + (expires_at - created_at) * self.share
        return expires_at - self.before_expiry


@cache
def parse_points(text: str) -> tuple[Point, ...]:
    """The points of an `APPROVALS_REMINDERS` value; ValueError says what is wrong."""
    points = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        match = POINT_RE.fullmatch(item)
        if not match:
            raise ValueError(
                f"{item!r} is not a reminder point: use a share of the lifetime such as 50% "
                "or a time before expiry such as 1d, 4h, 30m or 90s."
            )
        if match["percent"] is not None:
            share = float(match["percent"]) / 100
            if not 0 < share < 1:
                raise ValueError(f"{item!r}: a share must be between 0% and 100%, exclusive.")
            points.append(Point(item, share=share))
        else:
            seconds = int(match["number"]) * UNITS[match["unit"]]
            if seconds <= 0:
                raise ValueError(f"{item!r}: a time before expiry must be positive.")
            points.append(Point(item, before_expiry=timedelta(seconds=seconds)))
    return tuple(points)


def setting_problem(value) -> str | None:
    """What makes `value` no `APPROVALS_REMINDERS` setting, or None when it is one."""
    if not isinstance(value, str):
        return "it must be a string such as '50%,1d'."
    try:
        parse_points(value)
    except ValueError as error:
        return str(error)
    return None


def points() -> tuple[Point, ...]:
    return parse_points(settings.APPROVALS_REMINDERS)


def next_reminder_at(
    created_at: datetime, expires_at: datetime, after: datetime
) -> datetime | None:
    """The first reminder point strictly after `after` (and after registration), before expiry."""
    times = [point.at(created_at, expires_at) for point in points()]
    due = [t for t in times if t > after and t > created_at and t < expires_at]
    return min(due, default=None)


def send_due_notices(limit: int = 500) -> int:
    """Send the first notices and the reminders that are due; return how many requests.

    A request whose job was down over several reminder points gets one reminder, not one per
    point: its next reminder moves to the first point still ahead.
    """
    taken = 0
    with outbox.one_pass():  # their notices go out together, as the pass ends
        while taken < limit and (took := remind(min(REMIND_BATCH, limit - taken))):
            taken += took
    return taken


REMIND_BATCH = 100  # the requests `remind` locks and queues in one transaction


def remind(limit: int) -> int:
    """Take the due notices (a first notice, or a reminder) of up to `limit` requests, move
    each one's next notice on, and queue them to those who may decide each now, in one
    transaction; return how many requests this call took."""
    with transaction.atomic():
        now = timezone.now()
        # Requests another pass holds are being taken by it: skip them rather than wait.
        due = list(
            ApprovalRequest.objects.select_for_update(skip_locked=True)
            .filter(open_q(), next_reminder_at__lte=now)
            .order_by("next_reminder_at", "pk")[:limit]
        )
        prefetch_related_objects(due, "assignees", "decisions")
        first = [approval for approval in due if approval.notified_at is None]
        later = [approval for approval in due if approval.notified_at is not None]
        points = [{"point_at": iso_utc(approval.next_reminder_at)} for approval in later]
        for approval in due:
            approval.notified_at = approval.notified_at or now
            approval.next_reminder_at = next_reminder_at(
                approval.created_at, approval.expires_at, now
            )
        if first:
            notices.tell_deciders_of_many(first, notices.Purpose.NEW)
        if later:
            notices.tell_deciders_of_many(later, notices.Purpose.REMINDER, payloads=points)
        ApprovalRequest.objects.bulk_update(due, ["notified_at", "next_reminder_at"])
    return len(due)


def escalate_due(limit: int = 500) -> int:
    """Escalate the open requests whose escalation time has passed; return how many."""
    due = (
        ApprovalRequest.objects.filter(
            open_q(), escalates_at__lte=timezone.now(), escalated_at__isnull=True
        )
        .order_by("escalates_at")
        .values_list("pk", flat=True)[:limit]
    )
    with outbox.one_pass():  # their notices go out together, as the pass ends
        return sum(escalate(request_id) for request_id in list(due))


def escalate(request_id) -> bool:
    """Record one request's escalation and, once that is committed, tell its escalation targets
    that they may now decide it; return whether this call escalated it. Never twice."""
    with transaction.atomic():
        now = timezone.now()
        approval = (
            ApprovalRequest.objects.select_for_update(skip_locked=True)
            .filter(open_q(), pk=request_id, escalates_at__lte=now, escalated_at__isnull=True)
            .first()
        )
        if approval is None:
            return False  # decided, closed, or escalated by another pass meanwhile
        approval.escalated_at = now
        approval.save(update_fields=["escalated_at"])
        AuditEvent.objects.create(
            request=approval,
            kind=AuditEvent.Kind.ESCALATED,
            actor="system",
            at=now,
            payload={
                "escalate_to": approval.named(Assignee.Role.ESCALATION),
                "escalates_at": iso_utc(approval.escalates_at),
            },
        )
        notices.tell_deciders(approval, notices.Purpose.ESCALATION)
    logger.info(
        "Request %s escalated",
        approval.pk,
        extra={"json_fields": {"request_id": str(approval.pk)}},
    )
    return True


def tell_handed_due(limit: int = 500) -> int:
    """Tell the people requests were handed to (`services.reassign`) whose notice is due;
    return how many were taken."""
    due = (
        Assignee.objects.filter(notice_due_at__lte=timezone.now())
        .order_by("notice_due_at")
        .values_list("pk", flat=True)[:limit]
    )
    with outbox.one_pass():  # their notices go out together, as the pass ends
        return sum(tell_handed(row_id) for row_id in list(due))


def tell_handed(row_id) -> bool:
    """Take one due reassignment notice and queue it to the person the request was handed to
    (only while it is open and theirs to decide); return whether this call took it. Locked on
    the request like `remind`, so two passes never send it twice."""
    with transaction.atomic():
        row = Assignee.objects.filter(pk=row_id, notice_due_at__lte=timezone.now()).first()
        if row is None:
            return False
        approval = (
            ApprovalRequest.objects.select_for_update(skip_locked=True)
            .filter(pk=row.request_id)
            .first()
        )
        if approval is None:
            return False  # another pass holds it
        row = Assignee.objects.filter(pk=row_id, notice_due_at__isnull=False).first()
        if row is None:
            return False  # taken by another pass meanwhile
        Assignee.objects.filter(pk=row_id).update(notice_due_at=None)
        if approval.is_open:
            notices.tell_deciders(approval, notices.Purpose.REASSIGNED, handed=row)
    return True
