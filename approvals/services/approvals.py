"""Every change of state of an approval request: register, decide, cancel.

Each function runs in one transaction and writes its audit event in it, so the log and the data
never disagree. Views and the API call these; nothing here parses HTTP or renders HTML.
"""

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import delivery, emails, inputs, permissions, text, wire
from approvals.models import (
    CLOSING_OUTCOMES,
    MAX_COMMENT,
    ApprovalRequest,
    Assignee,
    AuditEvent,
    Decision,
    DeliveryStatus,
    Outcome,
    Status,
    overdue_q,
)
from approvals.notify import outbox
from approvals.registration import Registration

logger = logging.getLogger(__name__)


class DecisionRefused(Exception):
    """The decision was not taken; the message says why, for the person who tried.

    `approval` is the request as the refusal found it, locked (None when there is no such request,
    or when the input was refused before it was read), and `visible` whether that person may
    still see it: what a page needs to show it again without asking anew.
    """

    def __init__(
        self, message: str, approval: ApprovalRequest | None = None, visible: bool = False
    ):
        super().__init__(message)
        self.message = message
        self.approval = approval
        self.visible = visible


@dataclass(frozen=True)
class Decided:
    """A decision taken, and its approval as it stands after the commit: closed, with what the
    callback's first attempt came back with, when the decision was final; else still pending,
    waiting for `approvals_missing` more approvals from other people."""

    decision: Decision
    approval: ApprovalRequest
    approvals_missing: int


# What a person is told of the callback's first attempt (`ApprovalRequest.delivery_problem`).
DELIVERY_SHOWN = ["delivery_status", "delivery_last_status_code", "delivery_last_error"]


class CallbackUrlTaken(Exception):
    """Another API caller registered this callback URL: its request is not this caller's."""


class AlreadyDecided(Exception):
    """A cancel came too late: the request was decided."""

    def __init__(self, approval: ApprovalRequest):
        super().__init__(permissions.closed_message(approval))
        self.approval = approval


@dataclass(frozen=True)
class Registered:
    approval: ApprovalRequest
    created: bool


def register(registration: Registration, caller: str) -> Registered:
    """Store a pending approval, or find the one this caller already registered for this
    callback URL; raise CallbackUrlTaken when another caller did.

    Workflows retries its HTTP calls, so the same registration may arrive twice (even at once);
    the unique callback URL makes the second one find the first. The insert is tried first and a
    repeat found from its unique violation: repeats are rare, and a query before every insert
    would cost every registration a round trip (docs/benchmarks.md).
    """
    try:
        with transaction.atomic():
            approval = _store_registration(registration, caller)
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
        approval.pk,
        extra={"json_fields": {"request_id": str(approval.pk), "caller": caller}},
    )
    return Registered(approval, created=True)


def _store_registration(registration: Registration, caller: str) -> ApprovalRequest:
    """Insert the approval, who decides it and its audit event (IntegrityError for a repeat)."""
    now = timezone.now()
    escalates = registration.escalate_after is not None
    approval = ApprovalRequest.objects.create(
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
        allow_changes_requested=registration.allow_changes_requested,
        inputs=registration.inputs,
        created_at=now,
        expires_at=now + registration.timeout,
        escalates_at=now + registration.escalate_after if escalates else None,
        # The first notice to the deciders is due at once; `send_notifications` sends it,
        # outside the workflow's HTTP call (README: "E-mail").
        next_reminder_at=now,
        notify_requester=registration.notify_requester,
    )
    Assignee.objects.bulk_create(_assignees(approval, registration))
    AuditEvent.objects.create(
        request=approval,
        kind=AuditEvent.Kind.REGISTERED,
        actor=caller,
        at=now,
        payload=_registered_payload(approval, registration),
    )
    return approval


def _assignees(approval: ApprovalRequest, registration: Registration) -> list[Assignee]:
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
                Assignee(request=approval, role=named_role, email=email, email_key=key, group=group)
            )
    return rows


def _registered_payload(approval: ApprovalRequest, registration: Registration) -> dict:
    """What the audit log keeps of a registration: who asked, and the policy it set."""
    payload = {
        "external_id": registration.external_id,
        "requester_email": registration.requester_email,
        "assignees": registration.assignees,
        "expires_at": wire.iso_utc(approval.expires_at),
    }
    if registration.assignee_groups:
        payload["assignee_groups"] = registration.assignee_groups
    if registration.required_approvals > 1:
        payload["required_approvals"] = registration.required_approvals
    if registration.allow_changes_requested:
        payload["allow_changes_requested"] = True
    if registration.inputs:
        payload["inputs"] = [spec["name"] for spec in registration.inputs]
    if not registration.notify_requester:
        payload["notify_requester"] = False
    if approval.escalates_at is not None:
        payload["escalate_to"] = registration.escalate_to_emails + registration.escalate_to_groups
        payload["escalates_at"] = wire.iso_utc(approval.escalates_at)
    return payload


def comment_problem(outcome: str | None, comment: str, *, several: bool = False) -> str | None:
    """What is wrong with deciding `outcome` with `comment`, or None: a rejection, and a send
    back, needs a comment (the workflow and the requester are told why, or what to change).
    `several` words it for a bulk rejection.

    The one home of the rule: the forms show it at the field, `decide` refuses without it.
    """
    if comment.strip():
        return None
    if outcome == Outcome.REJECTED:
        return f"Say why you reject {'them' if several else 'it'}: a comment is required."
    if outcome == Outcome.CHANGES_REQUESTED:
        return "Say what should change: a comment is required to send it back."
    return None


def comment_text_problem(comment: str) -> str | None:
    """What no comment may be, whatever the outcome: longer than `MAX_COMMENT`, or holding
    characters no kept text may hold (`approvals.text`). The page's form states the same limits
    as field validators; the API and the chat endpoints call this; `decide` refuses with it."""
    if len(comment) > MAX_COMMENT:
        return f"At most {MAX_COMMENT:,} characters."
    return text.multi_line_problem(comment)


NOT_SENT_BACK = "This request does not allow changes to be requested."


def outcome_problem(approval: ApprovalRequest, outcome: str) -> str | None:
    """What is wrong with deciding `approval` so, or None: a send back only where its
    registration allowed it (`ApprovalRequest.outcomes`, which the page's buttons follow). The
    one home of the rule: `decide` refuses with it, the API names it at `decision`."""
    if outcome not in approval.outcomes:
        return NOT_SENT_BACK
    return None


class InputsRefused(DecisionRefused):
    """The values given for the request's inputs are not valid: `errors` by input name."""

    def __init__(self, invalid: inputs.InvalidInputs, approval: ApprovalRequest):
        super().__init__(f"The inputs are not valid: {invalid}", approval, visible=True)
        self.errors = invalid.errors


def decide(approval_id, user, outcome: str, comment: str, *, values=None, via=None) -> Decided:
    """Record `user`'s decision and queue the callback; raise DecisionRefused if not allowed.

    `values`: what the person gave for the request's inputs (InputsRefused when not valid).

    `via` says how it came, for the audit event (the API: `{"channel": "api", "token": prefix}`);
    the page's decisions leave it out.

    The request row is locked while the rules are checked, so two people deciding at once, or one
    double click, give one decision; the second is refused with who was faster.

    A rejection, or a send back, closes the request. An approval closes it once it is the request's
    `required_approvals`-th; before that the request stays pending and nothing is sent. The
    callback goes out once, when the outcome is final, and carries every decision; its first
    attempt runs at the commit, so the approval returned says what the workflow heard.
    """
    outcome = Outcome(outcome)
    comment = comment.strip()
    problem = comment_text_problem(comment) or comment_problem(outcome, comment)
    if problem:
        raise DecisionRefused(problem)
    with transaction.atomic():
        approval = ApprovalRequest.objects.select_for_update().filter(pk=approval_id).first()
        capacity = _capacity(user, approval)
        refused = outcome_problem(approval, outcome)
        if refused:
            raise DecisionRefused(refused, approval, visible=True)
        given_inputs = _given_inputs(approval, outcome, values or {})
        decision = Decision.objects.create(
            request=approval,
            outcome=outcome,
            decided_by=permissions.user_email(user),
            on_behalf_of=capacity.on_behalf_of,
            user=user,
            comment=comment,
            inputs=given_inputs,
            decided_at=timezone.now(),
        )
        given = approval.approvals_given  # a fresh query (no prefetch here): counts this one
        final = outcome in CLOSING_OUTCOMES or given >= approval.required_approvals
        _audit_decision(approval, decision, given, final, via)
        if final:
            _close(approval, decision)
        else:  # the chat messages of whoever had their say tell them so; the others' still ask
            names = (decision.decided_by, decision.on_behalf_of)
            had_say = [permissions.rules.mailbox(name) for name in names if name]
            outbox.update_messages(approval, email_keys=had_say)
    if not final:
        return Decided(decision, approval, approvals_missing=approval.required_approvals - given)
    # The first attempt ran at the commit (unless a caller's own transaction still holds it).
    approval.refresh_from_db(fields=DELIVERY_SHOWN)
    return Decided(decision, approval, approvals_missing=0)


def _given_inputs(approval: ApprovalRequest, outcome: str, values: dict) -> dict:
    """The values to keep for the inputs `outcome` asks for; InputsRefused when not valid."""
    try:
        return inputs.clean(approval.inputs, outcome, values)
    except inputs.InvalidInputs as invalid:
        raise InputsRefused(invalid, approval) from None


def _capacity(user, approval: ApprovalRequest | None) -> permissions.Capacity:
    """How `user` may decide the locked `approval`; DecisionRefused when they may not."""
    if approval is None:
        raise DecisionRefused("There is no such request.")
    capacity = permissions.decider_capacity(user, approval)
    if capacity.refusal:
        visible = permissions.can_see(user, approval)
        raise DecisionRefused(capacity.refusal, approval, visible=visible)
    return capacity


def _audit_decision(
    approval: ApprovalRequest, decision: Decision, given: int, final: bool, via: dict | None
):
    """Write the decision's audit event, and its log line once it is committed."""
    payload = {"comment": decision.comment}
    if decision.inputs:
        payload["inputs"] = decision.inputs
    if via:
        payload["via"] = via
    if decision.on_behalf_of:
        payload["on_behalf_of"] = decision.on_behalf_of
    if approval.required_approvals > 1:
        payload["approvals"] = given
        payload["required_approvals"] = approval.required_approvals
    AuditEvent.objects.create(
        request=approval,
        kind=AuditEvent.Kind(decision.outcome.value),
        actor=decision.decided_by,
        at=decision.decided_at,
        payload=payload,
    )
    log_fields = {
        "request_id": str(approval.pk),
        "decision": decision.outcome.value,
        "final": final,
        "on_behalf_of": decision.on_behalf_of or None,
    }
    behalf = f" on behalf of {decision.on_behalf_of}" if decision.on_behalf_of else ""
    transaction.on_commit(
        lambda: logger.info(
            "Request %s %s by %s%s",
            approval.pk,
            decision.outcome.value,
            decision.decided_by,
            behalf,
            extra={"json_fields": log_fields},
        )
    )


def _close(approval: ApprovalRequest, decision: Decision) -> None:
    """Close the locked `approval` with its final `decision` and make its callback due."""
    now = decision.decided_at
    approval.status = Status(decision.outcome.value)
    approval.closed_at = now
    approval.delivery_status = DeliveryStatus.DUE
    approval.delivery_next_attempt_at = now
    approval.save(
        update_fields=[
            "status",
            "closed_at",
            "delivery_status",
            "delivery_next_attempt_at",
            *_closing_notices(approval, now),
        ]
    )
    # The first attempt runs once the decision is safely stored. It claims the callback like
    # any `deliver_callbacks` pass (one of them wins); if it fails, a later pass retries.
    transaction.on_commit(
        lambda: delivery.send(approval.pk, delivery.FIRST_ATTEMPT_READ_TIMEOUT_SECONDS),
        robust=True,
    )


def _closing_notices(approval: ApprovalRequest, now) -> list[str]:
    """In the transaction that closes `approval`: queue the updates of its chat messages, and
    make the requester's outcome notice due unless the registration said not to; the fields to
    save. `send_notifications` sends both, never the call that closed the request
    (`approvals.notify.outbox`, `approvals.notify.outcome`)."""
    outbox.update_messages(approval)
    if not approval.notify_requester:
        return []
    approval.requester_notice_due_at = now
    return ["requester_notice_due_at"]


def cancel(approval_id, caller: str) -> ApprovalRequest:
    """Close a pending request because its workflow stopped waiting; idempotent.

    Raises ApprovalRequest.DoesNotExist for an unknown id or another caller's request, and
    AlreadyDecided when a decision won.
    """
    with transaction.atomic():
        approval = permissions.requests_of_caller(caller).select_for_update().get(pk=approval_id)
        if approval.status in (Status.CANCELLED, Status.EXPIRED):
            return approval  # closed already; the workflow stopped waiting either way
        if approval.status != Status.PENDING:
            raise AlreadyDecided(approval)
        if approval.is_expired:
            # It already shows as expired everywhere; keep that rather than turn it cancelled.
            _record_expiry(approval, seen_by="cancel")
            return approval
        now = timezone.now()
        approval.status = Status.CANCELLED
        approval.closed_at = now
        approval.save(update_fields=["status", "closed_at", *_closing_notices(approval, now)])
        AuditEvent.objects.create(
            request=approval, kind=AuditEvent.Kind.CANCELLED, actor=caller, at=now, payload={}
        )
    logger.info(
        "Request %s cancelled by %s",
        approval.pk,
        caller,
        extra={"json_fields": {"request_id": str(approval.pk)}},
    )
    return approval


def expire(approval_id, seen_by: str = "system") -> bool:
    """Record that a pending request ran out of time; return whether this call recorded it.

    Expiry already shows everywhere without this (`ApprovalRequest.effective_status`); recording
    it stores the status and writes the audit event, once, when the request is first seen or
    swept after its deadline. Locked like `decide`, so a decision and an expiry never both win.
    """
    with transaction.atomic():
        approval = ApprovalRequest.objects.select_for_update().filter(pk=approval_id).first()
        if approval is None or not approval.is_expired:
            return False
        _record_expiry(approval, seen_by)
    return True


def expire_when_seen(approval: ApprovalRequest, seen_by: str) -> bool:
    """Record the expiry of `approval`, just read to be shown, if its time ran out; return
    whether this call recorded it. The instance is read again then, to show what is stored.

    The one home of "expired requests are recorded when first seen": the request's page, the
    e-mail link's page and the API call it, `seen_by` saying which (the audit event keeps it).
    """
    if not approval.is_expired or not expire(approval.pk, seen_by=seen_by):
        return False
    approval.refresh_from_db()
    return True


def _record_expiry(approval: ApprovalRequest, seen_by: str) -> None:
    """Store the expiry of a locked, pending request past its deadline, with its audit event."""
    now = timezone.now()
    approval.status = Status.EXPIRED
    approval.closed_at = now
    approval.save(update_fields=["status", "closed_at", *_closing_notices(approval, now)])
    AuditEvent.objects.create(
        request=approval,
        kind=AuditEvent.Kind.EXPIRED,
        actor="system",
        at=now,
        payload={"expires_at": wire.iso_utc(approval.expires_at), "seen_by": seen_by},
    )
    transaction.on_commit(
        lambda: logger.info(
            "Request %s expired",
            approval.pk,
            extra={"json_fields": {"request_id": str(approval.pk), "seen_by": seen_by}},
        )
    )


def expire_overdue(limit: int = 500) -> int:
    """Record the expiry of pending requests past their deadline; return how many."""
    overdue = ApprovalRequest.objects.filter(overdue_q()).values_list("pk", flat=True)[:limit]
    return sum(expire(approval_id, seen_by="sweep") for approval_id in list(overdue))


def retry_callback(approval_id, actor: str) -> bool:
    """Queue a failed or gone callback for an attempt now; return False if it is not one.

    For an operator who fixed the cause (an IAM grant, say) or knows the workflow waits again.
    """
    with transaction.atomic():
        approval = ApprovalRequest.objects.select_for_update().filter(pk=approval_id).first()
        retryable = (DeliveryStatus.FAILED, DeliveryStatus.GONE)
        if approval is None or approval.delivery_status not in retryable:
            return False
        now = timezone.now()
        previous = approval.delivery_status
        approval.delivery_status = DeliveryStatus.DUE
        approval.delivery_next_attempt_at = now
        approval.delivery_client_errors = 0
        approval.save(
            update_fields=["delivery_status", "delivery_next_attempt_at", "delivery_client_errors"]
        )
        AuditEvent.objects.create(
            request=approval,
            kind=AuditEvent.Kind.CALLBACK_RETRY,
            actor=actor,
            at=now,
            payload={"previous_delivery_status": previous},
        )
        transaction.on_commit(lambda: delivery.send(approval.pk), robust=True)
    return True
