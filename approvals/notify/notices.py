"""Who is told of what: the notices to the people who may decide a request (new, reminded,
escalated, handed to them) and to a new delegate, queued in the outbox (`notify.outbox`).

Each person concerned (`permissions.deciders`, read under the request's lock by the pass that
took the occasion, `notify.reminders`) gets the notice once on each of their channels; a
delegate is told whom they stand in for. On e-mail it carries two signed links, Approve and
Reject, which only open a confirmation page (mail scanners follow links; a GET never decides),
and in Slack and Google Chat buttons; every one of them ends in `services.decide`.
"""

import logging

from approvals import permissions
from approvals.models import ApprovalRequest, Assignee, Notice
from approvals.notify import outbox

logger = logging.getLogger(__name__)

Purpose = Notice.Purpose

NOBODY_LOG = {
    Purpose.NEW: "Nobody may decide request %s, so nobody was told",
    Purpose.REMINDER: "Nobody may decide request %s, so nobody was reminded",
    Purpose.ESCALATION: "Nobody named by the escalation of request %s may decide it, so nobody "
    "was told",
    Purpose.REASSIGNED: "The person request %s was handed to may not decide it now, so nobody "
    "was told",
}


def tell_deciders(
    approval: ApprovalRequest,
    purpose: str,
    payload: dict | None = None,
    handed: Assignee | None = None,
) -> list[Notice]:
    """Queue the notice `purpose` names to the people it concerns, in the caller's transaction.

    `payload` adds fields to the audit events (a reminder's `point_at`). `handed` is the row of
    the person a reassignment named (`Purpose.REASSIGNED`): only they are told, if they may
    decide it.
    """
    return tell_deciders_of_many([approval], purpose, payloads=[payload], handed=handed)


def tell_deciders_of_many(
    approvals: list[ApprovalRequest],
    purpose: str,
    *,
    payloads: list[dict | None] | None = None,
    handed: Assignee | None = None,
) -> list[Notice]:
    """`tell_deciders` for many approvals on one occasion each (a pass's hundreds, `payloads`
    beside them): their deciders read together, their notices written in one INSERT."""
    purpose = Purpose(purpose)
    role = Assignee.Role.ESCALATION if purpose == Purpose.ESCALATION else None
    found = permissions.deciders_of_many(approvals, role=role)
    occasions = []
    payloads = payloads or [None] * len(approvals)
    for approval, payload in zip(approvals, payloads, strict=True):
        people = found[approval.pk]
        if handed is not None:
            people = [p for p in people if permissions.user_email(p.user) == handed.email_key]
        if not people:
            logger.warning(
                NOBODY_LOG[purpose],
                approval.pk,
                extra={"json_fields": {"request_id": str(approval.pk), "purpose": purpose.value}},
            )
            continue
        recipients = outbox.deciders(people)
        occasions.append(outbox.Occasion(purpose, recipients, approval, payload=payload))
    return outbox.queue_all(occasions)


CATCH_UP = 20  # a person who just added a chat app gets the requests ending soonest, this many


def tell_waiting(user, channel: str, conversation: str) -> int:
    """Queue, on `channel` only, the requests waiting for `user` now (those ending soonest, at
    most CATCH_UP), unless already sent to this `conversation` or on their way: someone who just
    added the app in chat finds them there, not only what arrives later, and an event delivered
    twice sends them once. Sent by the next notice pass; return how many."""
    waiting = permissions.requests_awaiting(user).order_by("expires_at", "pk")[:CATCH_UP]
    queued = 0
    for approval in waiting.prefetch_related("assignees", "decisions", "notices"):
        capacity = permissions.decider_capacity(user, approval)
        if capacity.refusal or _already_there(approval, user, channel, conversation):
            continue
        recipient = outbox.Recipient(user.email, user, capacity.on_behalf_of)
        queued += bool(
            outbox.queue(
                Purpose.NEW,
                [recipient],
                approval=approval,
                payload={"catching_up": True},
                send_now=False,
                only_channel=channel,
            )
        )
    return queued


def _already_there(approval, user, channel: str, conversation: str) -> bool:
    """Whether a notice of `approval` to `user` is due on `channel`, or was sent to
    `conversation` (a Chat message's name starts with its space's)."""
    mailbox = permissions.user_email(user)
    for notice in approval.notices.all():
        if notice.channel != channel or notice.email_key != mailbox:
            continue
        if notice.state == Notice.State.DUE:
            return True
        name = str(notice.ref.get("name") or notice.ref.get("channel") or "")
        if notice.state == Notice.State.SENT and name.startswith(conversation + "/"):
            return True
    return False


def handed(notice: Notice) -> Assignee | None:
    """The reassignment a REASSIGNED notice tells of: the row naming its person, with who handed
    the request to them and their note (the latest, if it was handed to them twice)."""
    if notice.purpose != Purpose.REASSIGNED or notice.request_id is None:
        return None
    rows = Assignee.objects.filter(request_id=notice.request_id, email_key=notice.email_key)
    return rows.exclude(handed_by="").order_by("-pk").first()


def tell_delegate(delegation) -> list[Notice]:
    """Queue the notice to a person just named a delegate: for whom, from when until when, where
    the requests will appear. (No request, so no audit event: the delegations page lists it.)"""
    delegate = delegation.delegate
    recipient = outbox.Recipient(delegate.email, delegate)
    return outbox.queue(Purpose.DELEGATION, [recipient], delegation=delegation)
