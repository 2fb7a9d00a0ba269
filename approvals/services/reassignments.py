"""Handing an open request to another approver (reassigning), in one transaction.

Who may hand it on, and to whom, is `permissions.reassign_capacity` and `permissions.new_decider`;
what a reassignment is in the data is told in `models.Assignee`. The new person is e-mailed by
`send_notifications` (`notify.reminders.tell_handed_due`), never inside this call.
"""

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from approvals import permissions
from approvals.models import ApprovalRequest, Assignee, AuditEvent

logger = logging.getLogger(__name__)


class ReassignRefused(Exception):
    """The request was not handed on; `message` says why, `status` is the HTTP answer for it
    (403 not theirs to hand on, 409 closed, 400 a person it cannot go to)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Reassigned:
    approval: ApprovalRequest
    to: str  # the new person's mailbox


def reassign(approval_id, user, to_address: str, note: str = "") -> Reassigned:
    """Hand the open request to the approver at `to_address`; raise ReassignRefused if not
    allowed. Locked like `decide`, so a decision and a reassignment never cross."""
    note = note.strip()
    with transaction.atomic():
        approval = ApprovalRequest.objects.select_for_update().filter(pk=approval_id).first()
        if approval is None:
            raise ReassignRefused("There is no such request.", status=404)
        handing = permissions.reassign_capacity(user, approval)
        if handing.refusal:
            status = 409 if not approval.is_open else 403
            raise ReassignRefused(handing.refusal, status=status)
        refusal, account = permissions.new_decider(to_address, user, approval)
        if refusal:
            raise ReassignRefused(refusal)
        by, to = permissions.user_email(user), permissions.user_email(account)
        now = timezone.now()
        could_before = _could_approve(approval)
        _move_place(approval, by, to, now, in_place=handing.in_place, note=note)
        _refuse_if_stranded(approval, could_before, to)
        payload = {"from": by, "to": to, "note": note}
        if not handing.in_place:
            payload["as"] = "request administrator"
        AuditEvent.objects.create(
            request=approval, kind=AuditEvent.Kind.REASSIGNED, actor=by, at=now, payload=payload
        )
    logger.info(
        "Request %s handed by %s to %s",
        approval.pk,
        by,
        to,
        extra={"json_fields": {"request_id": str(approval.pk), "from": by, "to": to}},
    )
    return Reassigned(approval, to)


def _could_approve(approval: ApprovalRequest) -> int:
    """How many people may approve `approval` now as themselves (delegates decide for one of
    them, so they add no say)."""
    return sum(not d.on_behalf_of for d in permissions.deciders(approval))


def _refuse_if_stranded(approval: ApprovalRequest, could_before: int, to: str) -> None:
    """Refuse (rolling the move back) a reassignment that leaves fewer people who could approve
    than the approvals still missing, when there were more before: with several approvals, the
    new person as the one named decider could strand the request."""
    missing = approval.approvals_missing
    could = _could_approve(approval)
    if could < missing and could < could_before:
        raise ReassignRefused(
            f"Handing it to {to} would leave {could} person(s) who could approve it, and it "
            f"still needs {missing} approval(s)."
        )


def _move_place(
    approval: ApprovalRequest, by: str, to: str, now, *, in_place: bool, note: str
) -> None:
    """Change the rows naming who decides: `by` hands on their place (`in_place`; a request
    administrator has none) and `to` takes it, due to be told. When `by` was not named by an
    assignee row of their own (a group, or a request that named nobody), the groups' rows are
    superseded, so the new person is the one named in their place."""
    rows = list(Assignee.objects.filter(request=approval))
    role = Assignee.Role
    own = [a for a in rows if a.role == role.ASSIGNEE and a.email_key == by] if in_place else []
    if in_place:
        if own:
            Assignee.objects.filter(pk=own[0].pk).update(role=role.HANDED_ON)
        else:
            Assignee.objects.create(request=approval, role=role.HANDED_ON, email=by, email_key=by)
    if not own:
        Assignee.objects.filter(request=approval, role=role.ASSIGNEE).exclude(group="").update(
            role=role.SUPERSEDED
        )
    # Their assignee row first: a person has at most one row per role.
    theirs = [a for a in rows if a.email_key == to and a.role == role.ASSIGNEE]
    theirs += [a for a in rows if a.email_key == to and a.role == role.HANDED_ON]
    fields = {"role": role.ASSIGNEE, "handed_by": by, "handed_note": note, "notice_due_at": now}
    if theirs:
        # Named already, or handed it on before and now handed it back: the row names them again.
        Assignee.objects.filter(pk=theirs[0].pk).update(**fields)
    else:
        Assignee.objects.create(request=approval, email=to, email_key=to, **fields)
