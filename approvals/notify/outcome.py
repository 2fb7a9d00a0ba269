"""The requester told when their request closes: the outcome, who decided, the comments and the
inputs, and a link to the request's page (the e-mail's templates: `channels.email`).

The transaction that closes a request (`services`: a decision, a cancel, an expiry) marks the
notice due in `requester_notice_due_at`, unless the registration said `notify_requester: false`,
and `manage.py send_notifications` takes it, never the call that closed the request: each request
is locked while its turn is taken, so two passes at once queue it once, on each of the
requester's channels (`notify.outbox`, which retries a failing channel and records
`outcome_mailed` or `outcome_mail_failed`).
"""

from django.db import transaction
from django.utils import timezone

from approvals.models import ApprovalRequest, Notice
from approvals.notify import outbox


def send_due(limit: int = 500) -> int:
    """Queue the requesters' notices that are due; return how many requests were taken."""
    due = (
        ApprovalRequest.objects.filter(requester_notice_due_at__lte=timezone.now())
        .order_by("requester_notice_due_at")
        .values_list("pk", flat=True)[:limit]
    )
    with outbox.one_pass():  # their notices go out together, as the pass ends
        return sum(tell_requester(request_id) for request_id in list(due))


def tell_requester(request_id) -> bool:
    """Take one request's due outcome notice and queue it; return whether this call took it."""
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
        requester = outbox.Recipient(approval.requester_email)
        outbox.queue(
            Notice.Purpose.OUTCOME,
            [requester],
            approval=approval,
            payload={"status": approval.effective_status},
        )
    return True
