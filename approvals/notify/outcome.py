"""The requester's e-mail when their request closes: the outcome, who decided, the comments and
the inputs, and a link to the request's page.

It leaves from the same outbox as the deciders' mail (`approvals.notify.reminders`): the
transaction that closes a request (`services`: a decision, a cancel, an expiry) marks the mail
due in `requester_notice_due_at`, unless the registration said `notify_requester: false`, and
`manage.py send_notifications` sends it, never the call that closed the request. Each request is
locked while its turn is taken, so two passes at once send it once; the mail goes out after that
commits. When it could not be sent it is due again `MAIL_RETRY_DELAY` later, until
`GIVE_UP_AFTER` has passed since the request closed. Both are audit events: `outcome_mailed`
and `outcome_mail_failed`.
"""

import logging
from datetime import timedelta

from django.core import mail
from django.db import transaction
from django.utils import timezone

from approvals import wire
from approvals.models import ApprovalRequest, AuditEvent
from approvals.notify import notices
from approvals.notify.reminders import MAIL_RETRY_DELAY

logger = logging.getLogger(__name__)

# A requester's mail server that refuses for this long after the request closed: stop trying.
GIVE_UP_AFTER = timedelta(days=1)
PURPOSE = "outcome"  # the audit payloads' `purpose`, beside the deciders' new/reminder/escalation
# The first words of the subject and of the mail, per closing status. ("changes_requested" is
# the send-back status of "Richer decisions"; it is here whether or not the enum has it yet.)
HEADLINES = {
    "approved": ("Approved", "was approved"),
    "rejected": ("Rejected", "was rejected"),
    "changes_requested": ("Sent back", "was sent back to you for changes"),
    "expired": ("Expired", "expired before it was decided"),
    "cancelled": ("Cancelled", "was cancelled by its workflow"),
}


def send_due(limit: int = 500) -> int:
    """Send the requesters' outcome mails that are due; return how many requests were taken."""
    due = (
        ApprovalRequest.objects.filter(requester_notice_due_at__lte=timezone.now())
        .order_by("requester_notice_due_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(tell_requester(request_id) for request_id in list(due))


def tell_requester(request_id) -> bool:
    """Take one request's due outcome mail and, once that is committed, send it; return whether
    this call took it."""
    with transaction.atomic():
        approval = (
            ApprovalRequest.objects.select_for_update(skip_locked=True)
            .filter(pk=request_id, requester_notice_due_at__lte=timezone.now())
            .first()
        )
        if approval is None:
            return False  # sent, or taken by another pass meanwhile
        approval.requester_notice_due_at = None
        approval.save(update_fields=["requester_notice_due_at"])
        transaction.on_commit(lambda: _send(approval.pk), robust=True)
    return True


def _send(request_id) -> None:
    """Send the mail and record it; when it fails, record that and make it due again later."""
    approval = ApprovalRequest.objects.filter(pk=request_id).prefetch_related("decisions").first()
    address = approval.requester_email.strip()
    log_fields = {"request_id": str(approval.pk), "purpose": PURPOSE}
    try:
        _message(approval).send()
    except Exception as exc:  # noqa: BLE001 - any mail failure is recorded, not raised
        _failed(approval, address, notices.describe_failure(exc, []), log_fields)
        return
    AuditEvent.objects.create(
        request=approval,
        kind=AuditEvent.Kind.OUTCOME_MAILED,
        actor="system",
        at=timezone.now(),
        payload={"recipients": [address], "purpose": PURPOSE, "status": approval.status},
    )
    logger.info(
        "E-mailed the outcome of request %s to its requester",
        approval.pk,
        extra={"json_fields": log_fields},
    )


def _failed(approval: ApprovalRequest, address: str, error: str, log_fields: dict) -> None:
    """Record a failed outcome mail, and make it due again unless it is time to give up."""
    now = timezone.now()
    retry = now - approval.closed_at < GIVE_UP_AFTER
    AuditEvent.objects.create(
        request=approval,
        kind=AuditEvent.Kind.OUTCOME_MAIL_FAILED,
        actor="system",
        at=now,
        payload={"recipients": [address], "error": error, "purpose": PURPOSE, "retry": retry},
    )
    then = "giving up"
    if retry:
        retry_at = now + MAIL_RETRY_DELAY
        ApprovalRequest.objects.filter(pk=approval.pk).update(requester_notice_due_at=retry_at)
        then = f"trying again at {wire.iso_utc(retry_at)}"
    logger.warning(
        "Could not e-mail the outcome of request %s to its requester: %s; %s",
        approval.pk,
        error,
        then,
        extra={"json_fields": {**log_fields, "error": error, "retry": retry}},
    )


def _message(approval: ApprovalRequest) -> mail.EmailMultiAlternatives:
    status = approval.effective_status
    headline, sentence = HEADLINES.get(status, (status.capitalize(), f"is {status}"))
    decisions = list(approval.decisions.all())
    context = {
        "approval": approval,
        "status": status,
        "headline": headline,
        "sentence": sentence,
        "decisions": [_decision_context(decision) for decision in decisions],
        "page_url": wire.page_url(approval),
    }
    return notices.compose("outcome", context, approval.requester_email)


def _decision_context(decision) -> dict:
    """One decision as the mail shows it. `inputs` (the approver's inputs of "Richer decisions")
    is read when the decision has them: name, value pairs in the order given."""
    inputs = getattr(decision, "inputs", None) or {}
    return {
        "decision": decision,
        "said": HEADLINES.get(decision.outcome, (decision.outcome,))[0],
        "inputs": [(name, "—" if value is None else value) for name, value in inputs.items()],
    }
