"""Every change of state of an approval request: register, decide, cancel.

Each function runs in one transaction and writes its audit event in it, so the log and the data
never disagree. Views and the API call these; nothing here parses HTTP or renders HTML.
"""

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import delivery, notifications, permissions
from .models import (
    ApprovalRequest,
    Assignee,
    AuditEvent,
    Decision,
    DeliveryStatus,
    Outcome,
    Status,
    overdue_q,
)
from .registration import Registration

logger = logging.getLogger(__name__)


class DecisionRefused(Exception):
    """The decision was not taken; the message says why, for the person who tried."""


class AlreadyDecided(Exception):
    """A cancel came too late: the request was decided."""

    def __init__(self, request: ApprovalRequest):
        super().__init__(permissions.closed_message(request))
        self.request = request


@dataclass(frozen=True)
class Registered:
    request: ApprovalRequest
    created: bool


def register(registration: Registration, caller: str) -> Registered:
    """Store a pending approval, or find the one already registered for this callback URL.

    Workflows retries its HTTP calls, so the same registration may arrive twice (even at once);
    the unique callback URL makes the second one find the first.
    """
    existing = ApprovalRequest.objects.filter(callback_url=registration.callback_url).first()
    if existing is not None:
        return Registered(existing, created=False)
    now = timezone.now()
    try:
        with transaction.atomic():
            request = ApprovalRequest.objects.create(
                callback_url=registration.callback_url,
                title=registration.title,
                requester_email=registration.requester_email,
                amount=registration.amount,
                currency=registration.currency,
                description=registration.description,
                details=registration.details,
                external_id=registration.external_id,
                registered_by=caller,
                created_at=now,
                expires_at=now + registration.timeout,
            )
            Assignee.objects.bulk_create(
                Assignee(request=request, email=email) for email in registration.assignees
            )
            AuditEvent.objects.create(
                request=request,
                kind=AuditEvent.Kind.REGISTERED,
                actor=caller,
                at=now,
                payload={
                    "external_id": registration.external_id,
                    "requester_email": registration.requester_email,
                    "assignees": registration.assignees,
                    "expires_at": delivery.iso_utc(request.expires_at),
                },
            )
            # After the commit; a failing mail server is logged and audited, never raised.
            transaction.on_commit(lambda: notifications.notify_deciders(request.pk), robust=True)
    except IntegrityError:
        # Another copy of the same registration committed first.
        existing = ApprovalRequest.objects.filter(callback_url=registration.callback_url).first()
        if existing is None:
            raise
        return Registered(existing, created=False)
    logger.info(
        "Registered approval request %s",
        request.pk,
        extra={"json_fields": {"request_id": str(request.pk), "caller": caller}},
    )
    return Registered(request, created=True)


def decide(request_id, user, outcome: str, comment: str) -> Decision:
    """Record `user`'s decision and queue the callback; raise DecisionRefused if not allowed.

    The request row is locked while the rules are checked, so two people deciding at once, or one
    double click, give one decision; the second is refused with who was faster.
    """
    outcome = Outcome(outcome)
    comment = comment.strip()
    if outcome == Outcome.REJECTED and not comment:
        raise DecisionRefused("Say why you reject it: a comment is required.")
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None:
            raise DecisionRefused("There is no such request.")
        refusal = permissions.decision_refusal(user, request)
        if refusal:
            raise DecisionRefused(refusal)
        now = timezone.now()
        decision = Decision.objects.create(
            request=request,
            outcome=outcome,
            decided_by=user.email,
            user=user,
            comment=comment,
            decided_at=now,
        )
        request.status = Status(outcome.value)
        request.closed_at = now
        request.delivery_status = DeliveryStatus.DUE
        request.delivery_next_attempt_at = now
        request.save(
            update_fields=["status", "closed_at", "delivery_status", "delivery_next_attempt_at"]
        )
        AuditEvent.objects.create(
            request=request,
            kind=AuditEvent.Kind(outcome.value),
            actor=user.email,
            at=now,
            payload={"comment": comment},
        )
        transaction.on_commit(
            lambda: logger.info(
                "Request %s %s by %s",
                request.pk,
                outcome.value,
                user.email,
                extra={"json_fields": {"request_id": str(request.pk), "decision": outcome.value}},
            )
        )
        # The first attempt runs once the decision is safely stored; if it fails, the delivery
        # stays due and `deliver_callbacks` sends it later.
        transaction.on_commit(
            lambda: delivery.send(
                request.pk, delivery.FIRST_ATTEMPT_READ_TIMEOUT_SECONDS, skip_locked=False
            ),
            robust=True,
        )
    return decision


def cancel(request_id, caller: str) -> ApprovalRequest:
    """Close a pending request because its workflow stopped waiting; idempotent.

    Raises ApprovalRequest.DoesNotExist for an unknown id and AlreadyDecided when a decision won.
    """
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().get(pk=request_id)
        if request.status in (Status.CANCELLED, Status.EXPIRED):
            return request  # closed already; the workflow stopped waiting either way
        if request.status != Status.PENDING:
            raise AlreadyDecided(request)
        if request.is_expired:
            # It already shows as expired everywhere; keep that rather than turn it cancelled.
            _record_expiry(request, seen_by="cancel")
            return request
        now = timezone.now()
        request.status = Status.CANCELLED
        request.closed_at = now
        request.save(update_fields=["status", "closed_at"])
        AuditEvent.objects.create(
            request=request, kind=AuditEvent.Kind.CANCELLED, actor=caller, at=now, payload={}
        )
    logger.info(
        "Request %s cancelled by %s",
        request.pk,
        caller,
        extra={"json_fields": {"request_id": str(request.pk)}},
    )
    return request


def expire(request_id, seen_by: str = "system") -> bool:
    """Record that a pending request ran out of time; return whether this call recorded it.

    Expiry already shows everywhere without this (`ApprovalRequest.effective_status`); recording
    it stores the status and writes the audit event, once, when the request is first seen or
    swept after its deadline. Locked like `decide`, so a decision and an expiry never both win.
    """
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None or not request.is_expired:
            return False
        _record_expiry(request, seen_by)
    return True


def _record_expiry(request: ApprovalRequest, seen_by: str) -> None:
    """Store the expiry of a locked, pending request past its deadline, with its audit event."""
    now = timezone.now()
    request.status = Status.EXPIRED
    request.closed_at = now
    request.save(update_fields=["status", "closed_at"])
    AuditEvent.objects.create(
        request=request,
        kind=AuditEvent.Kind.EXPIRED,
        actor="system",
        at=now,
        payload={"expires_at": delivery.iso_utc(request.expires_at), "seen_by": seen_by},
    )
    transaction.on_commit(
        lambda: logger.info(
            "Request %s expired",
            request.pk,
            extra={"json_fields": {"request_id": str(request.pk), "seen_by": seen_by}},
        )
    )


def expire_overdue(limit: int = 500) -> int:
    """Record the expiry of pending requests past their deadline; return how many."""
    overdue = ApprovalRequest.objects.filter(overdue_q()).values_list("pk", flat=True)[:limit]
    return sum(expire(request_id, seen_by="sweep") for request_id in list(overdue))


def retry_callback(request_id, actor: str) -> bool:
    """Queue a failed or gone callback for an attempt now; return False if it is not one.

    For an operator who fixed the cause (an IAM grant, say) or knows the workflow waits again.
    """
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().filter(pk=request_id).first()
        retryable = (DeliveryStatus.FAILED, DeliveryStatus.GONE)
        if request is None or request.delivery_status not in retryable:
            return False
        now = timezone.now()
        previous = request.delivery_status
        request.delivery_status = DeliveryStatus.DUE
        request.delivery_next_attempt_at = now
        request.delivery_client_errors = 0
        request.save(
            update_fields=["delivery_status", "delivery_next_attempt_at", "delivery_client_errors"]
        )
        AuditEvent.objects.create(
            request=request,
            kind=AuditEvent.Kind.CALLBACK_RETRY,
            actor=actor,
            at=now,
            payload={"previous_delivery_status": previous},
        )
        transaction.on_commit(lambda: delivery.send(request.pk, skip_locked=False), robust=True)
    return True
