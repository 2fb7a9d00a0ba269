"""Every change of state of an approval request: register, decide, cancel.

Each function runs in one transaction and writes its audit event in it, so the log and the data
never disagree. Views and the API call these; nothing here parses HTTP or renders HTML.
"""

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import delivery, emails, permissions, wire
from approvals.models import (
    ApprovalRequest,
    Assignee,
    AuditEvent,
    Decision,
    DeliveryStatus,
    Outcome,
    Status,
    overdue_q,
)
from approvals.registration import Registration

logger = logging.getLogger(__name__)


class DecisionRefused(Exception):
    """The decision was not taken; the message says why, for the person who tried."""


class CallbackUrlTaken(Exception):
    """Another API caller registered this callback URL: its request is not this caller's."""


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
    """Store a pending approval, or find the one this caller already registered for this
    callback URL; raise CallbackUrlTaken when another caller did.

    Workflows retries its HTTP calls, so the same registration may arrive twice (even at once);
    the unique callback URL makes the second one find the first. The insert is tried first and a
    repeat found from its unique violation: repeats are rare, and a query before every insert
    would cost every registration a round trip (docs/benchmarks.md).
    """
    now = timezone.now()
    expires_at = now + registration.timeout
    escalates = registration.escalate_after is not None
    try:
        with transaction.atomic():
            request = ApprovalRequest.objects.create(
                callback_url=registration.callback_url,
                title=registration.title,
                requester_email=registration.requester_email,
                requester_key=emails.person(registration.requester_email),
                amount=registration.amount,
                currency=registration.currency,
                description=registration.description,
                details=registration.details,
                external_id=registration.external_id,
                registered_by=caller,
                required_approvals=registration.required_approvals,
                created_at=now,
                expires_at=expires_at,
                escalates_at=now + registration.escalate_after if escalates else None,
                # The first notice to the deciders is due at once; `send_notifications`
                # sends it, outside the workflow's HTTP call (README: "E-mail").
                next_reminder_at=now,
            )
            Assignee.objects.bulk_create(_assignees(request, registration))
            AuditEvent.objects.create(
                request=request,
                kind=AuditEvent.Kind.REGISTERED,
                actor=caller,
                at=now,
                payload=_registered_payload(request, registration),
            )
    except IntegrityError:
        # The same registration was stored before (or by another copy committing first).
        url = registration.callback_url
        existing = permissions.requests_of_caller(caller).filter(callback_url=url).first()
        if existing is not None:
            return Registered(existing, created=False)
        if ApprovalRequest.objects.filter(callback_url=url).exists():
            raise CallbackUrlTaken() from None
        raise
    logger.info(
        "Registered approval request %s",
        request.pk,
        extra={"json_fields": {"request_id": str(request.pk), "caller": caller}},
    )
    return Registered(request, created=True)


def _assignees(request: ApprovalRequest, registration: Registration) -> list[Assignee]:
    """The rows naming who decides; two spellings of one mailbox in a role are one row."""
    role = Assignee.Role
    named = [
        *((role.ASSIGNEE, e, "") for e in registration.assignees),
        *((role.ASSIGNEE, "", g) for g in registration.assignee_groups),
        *((role.ESCALATION, e, "") for e in registration.escalate_to_emails),
        *((role.ESCALATION, "", g) for g in registration.escalate_to_groups),
    ]
    rows, seen = [], set()
    for named_role, email, group in named:
        key = emails.canonical(email) if email else ""
        if (named_role, key, group) not in seen:
            seen.add((named_role, key, group))
            rows.append(
                Assignee(request=request, role=named_role, email=email, email_key=key, group=group)
            )
    return rows


def _registered_payload(request: ApprovalRequest, registration: Registration) -> dict:
    """What the audit log keeps of a registration: who asked, and the policy it set."""
    payload = {
        "external_id": registration.external_id,
        "requester_email": registration.requester_email,
        "assignees": registration.assignees,
        "expires_at": wire.iso_utc(request.expires_at),
    }
    if registration.assignee_groups:
        payload["assignee_groups"] = registration.assignee_groups
    if registration.required_approvals > 1:
        payload["required_approvals"] = registration.required_approvals
    if request.escalates_at is not None:
        payload["escalate_to"] = registration.escalate_to_emails + registration.escalate_to_groups
        payload["escalates_at"] = wire.iso_utc(request.escalates_at)
    return payload


def decide(request_id, user, outcome: str, comment: str, *, via: dict | None = None) -> Decision:
    """Record `user`'s decision and queue the callback; raise DecisionRefused if not allowed.

    `via` says how it came, for the audit event (the API: `{"channel": "api", "token": prefix}`);
    the page's decisions leave it out.

    The request row is locked while the rules are checked, so two people deciding at once, or one
    double click, give one decision; the second is refused with who was faster.

    A rejection closes the request. An approval closes it once it is the request's
    `required_approvals`-th; before that the request stays pending and nothing is sent. The
    callback goes out once, when the outcome is final, and carries every decision.
    """
    outcome = Outcome(outcome)
    comment = comment.strip()
    if outcome == Outcome.REJECTED and not comment:
        raise DecisionRefused("Say why you reject it: a comment is required.")
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None:
            raise DecisionRefused("There is no such request.")
        capacity = permissions.decider_capacity(user, request)
        if capacity.refusal:
            raise DecisionRefused(capacity.refusal)
        now = timezone.now()
        decided_by = permissions.user_email(user)
        decision = Decision.objects.create(
            request=request,
            outcome=outcome,
            decided_by=decided_by,
            on_behalf_of=capacity.on_behalf_of,
            user=user,
            comment=comment,
            decided_at=now,
        )
        approvals = request.approvals_given  # a fresh query (no prefetch here): counts this one
        final = outcome == Outcome.REJECTED or approvals >= request.required_approvals
        payload = {"comment": comment}
        if via:
            payload["via"] = via
        if capacity.on_behalf_of:
            payload["on_behalf_of"] = capacity.on_behalf_of
        if request.required_approvals > 1:
            payload["approvals"] = approvals
            payload["required_approvals"] = request.required_approvals
        AuditEvent.objects.create(
            request=request,
            kind=AuditEvent.Kind(outcome.value),
            actor=decided_by,
            at=now,
            payload=payload,
        )
        log_fields = {
            "request_id": str(request.pk),
            "decision": outcome.value,
            "final": final,
            "on_behalf_of": capacity.on_behalf_of or None,
        }
        transaction.on_commit(
            lambda: logger.info(
                "Request %s %s by %s%s",
                request.pk,
                outcome.value,
                decided_by,
                f" on behalf of {capacity.on_behalf_of}" if capacity.on_behalf_of else "",
                extra={"json_fields": log_fields},
            )
        )
        if not final:
            return decision
        request.status = Status(outcome.value)
        request.closed_at = now
        request.delivery_status = DeliveryStatus.DUE
        request.delivery_next_attempt_at = now
        request.save(
            update_fields=["status", "closed_at", "delivery_status", "delivery_next_attempt_at"]
        )
        # The first attempt runs once the decision is safely stored. It claims the callback like
        # any `deliver_callbacks` pass (one of them wins); if it fails, a later pass retries.
        transaction.on_commit(
            lambda: delivery.send(request.pk, delivery.FIRST_ATTEMPT_READ_TIMEOUT_SECONDS),
            robust=True,
        )
    return decision


def cancel(request_id, caller: str) -> ApprovalRequest:
    """Close a pending request because its workflow stopped waiting; idempotent.

    Raises ApprovalRequest.DoesNotExist for an unknown id or another caller's request, and
    AlreadyDecided when a decision won.
    """
    with transaction.atomic():
        request = permissions.requests_of_caller(caller).select_for_update().get(pk=request_id)
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
        payload={"expires_at": wire.iso_utc(request.expires_at), "seen_by": seen_by},
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
        transaction.on_commit(lambda: delivery.send(request.pk), robust=True)
    return True
