"""E-mail to the people who may decide a request: new, reminded, escalated; and to delegates.

One mail, three occasions (`Purpose`): a new request, a reminder of a request still waiting, and
an escalation that lets more people decide, all sent by `approvals.notify.reminders` (run by
`manage.py send_notifications`), never inside a workflow's registration call. Each person
concerned (`permissions.deciders`) gets one mail with the request's summary and two links,
Approve and Reject; the subject and the first line say which occasion it is, and a delegate is
told whom they stand in for. A link only opens a confirmation page (mail scanners follow links; a
GET never decides); the decision is the POST from that page, through `services.decide`; what a
link holds and allows is in `approvals.notify.links`. Apart from those, `tell_delegate` tells a
person they were just named someone's delegate.

A mail server that fails never fails the pass: the failure is logged and recorded as a
`notify_failed` audit event, the request waits in the inbox as any other, and when nobody at all
could be mailed the pass tries the same mail again later (`approvals.notify.reminders`).
"""

import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote_plus

from django.conf import settings
from django.core import mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from approvals import permissions, wire
from approvals.models import ApprovalRequest, Assignee, AuditEvent, Outcome
from approvals.notify import links

logger = logging.getLogger(__name__)


class Purpose(StrEnum):
    """Why a request is e-mailed; the subject, the first line and the audit event follow it."""

    NEW = "new"  # just registered: to everyone who may decide it
    REMINDER = "reminder"  # still waiting: to everyone who may decide it now
    ESCALATION = "escalation"  # escalated: to the escalation targets, who may now decide too
    REASSIGNED = "reassigned"  # handed to someone: to that person (`services.reassign`)


# What the audit log calls a successful sending, per purpose.
SENT_KIND = {
    Purpose.NEW: AuditEvent.Kind.NOTIFIED,
    Purpose.REMINDER: AuditEvent.Kind.REMINDED,
    Purpose.ESCALATION: AuditEvent.Kind.NOTIFIED,
    Purpose.REASSIGNED: AuditEvent.Kind.NOTIFIED,
}
SENT_LOG = {
    Purpose.NEW: "E-mailed request %s to %d possible decider(s)",
    Purpose.REMINDER: "E-mailed a reminder of request %s to %d possible decider(s)",
    Purpose.ESCALATION: "E-mailed the escalation of request %s to %d escalation target(s)",
    Purpose.REASSIGNED: "E-mailed request %s to the %d person it was handed to",
}
NOBODY_LOG = {
    Purpose.NEW: "Nobody may decide request %s, so nobody was e-mailed",
    Purpose.REMINDER: "Nobody may decide request %s, so nobody was reminded",
    Purpose.ESCALATION: "Nobody named by the escalation of request %s may decide it, so nobody "
    "was told",
    Purpose.REASSIGNED: "The person request %s was handed to may not decide it now, so nobody "
    "was told",
}


@dataclass(frozen=True)
class Notified:
    """How many mails went out, and how many could not be sent."""

    sent: int = 0
    failed: int = 0


def notify(
    request_id: uuid.UUID,
    purpose: Purpose,
    payload: dict | None = None,
    handed: Assignee | None = None,
) -> Notified:
    """E-mail the people `purpose` concerns; record who got it and what failed.

    Runs after the transaction that made the occasion commits (`notify.reminders`), and reads
    the request afresh: one decided or closed meanwhile is mailed to nobody. `payload` adds
    fields to the audit events (a reminder's `point_at`). `handed` is the row of the person a
    reassignment named (`Purpose.REASSIGNED`): only they are told, if they may decide it. A
    failure to send is logged and recorded, never raised.
    """
    purpose = Purpose(purpose)
    approval = (
        ApprovalRequest.objects.filter(pk=request_id)
        .prefetch_related("assignees", "decisions")
        .first()
    )
    if approval is None or not approval.is_open:
        return Notified()
    role = Assignee.Role.ESCALATION if purpose == Purpose.ESCALATION else None
    people = permissions.deciders(approval, role=role)
    if handed is not None:
        people = [p for p in people if permissions.user_email(p.user) == handed.email_key]
    log_fields = {"request_id": str(approval.pk), "purpose": purpose.value}
    if not people:
        logger.warning(NOBODY_LOG[purpose], approval.pk, extra={"json_fields": log_fields})
        return Notified()
    sent, errors = _send_each(approval, people, purpose, handed)
    extra = {"purpose": purpose.value, **(payload or {})}
    now = timezone.now()
    if sent:
        _record_sent(approval, purpose, sent, extra, now, log_fields)
    if errors:
        _record_failed(approval, errors, len(people), extra, now, log_fields)
    return Notified(sent=len(sent), failed=len(errors))


def _send_each(approval: ApprovalRequest, people, purpose: Purpose, handed=None):
    """One mail to each person over one connection: (the addresses sent to, {address: error})."""
    tokens: list[str] = []  # kept out of any error text that is logged or recorded
    errors: dict[str, str] = {}
    sent: list[str] = []
    try:
        with mail.get_connection() as connection:
            for person in people:
                address = person.email.strip()
                try:
                    _message(approval, person, purpose, connection, tokens, handed).send()
                except Exception as exc:  # noqa: BLE001 - any mail failure is recorded, not raised
                    errors[address] = describe_failure(exc, tokens)
                else:
                    sent.append(address)
    except Exception as exc:  # noqa: BLE001 - opening or closing the connection failed
        reason = describe_failure(exc, tokens)
        for person in people:
            address = person.email.strip()
            if address not in sent:
                errors.setdefault(address, reason)
    return sent, errors


def _record_sent(
    approval: ApprovalRequest, purpose: Purpose, sent: list[str], extra: dict, now, log_fields
) -> None:
    """The audit event and the log line of the mails that went out."""
    AuditEvent.objects.create(
        request=approval,
        kind=SENT_KIND[purpose],
        actor="system",
        at=now,
        payload={"recipients": sent, **extra},
    )
    logger.info(
        SENT_LOG[purpose],
        approval.pk,
        len(sent),
        extra={"json_fields": {**log_fields, "recipients": len(sent)}},
    )


def _record_failed(
    approval: ApprovalRequest, errors: dict[str, str], possible: int, extra: dict, now, log_fields
) -> None:
    """The audit event and the log line of the mails that could not be sent, of `possible`."""
    first_error = next(iter(errors.values()))
    AuditEvent.objects.create(
        request=approval,
        kind=AuditEvent.Kind.NOTIFY_FAILED,
        actor="system",
        at=now,
        payload={"recipients": list(errors), "error": first_error, **extra},
    )
    logger.warning(
        "Could not e-mail request %s to %d of %d possible decider(s): %s",
        approval.pk,
        len(errors),
        possible,
        first_error,
        extra={"json_fields": {**log_fields, "failed": len(errors), "error": first_error}},
    )


def _message(
    approval: ApprovalRequest, decider, purpose: Purpose, connection, tokens: list[str], handed
):
    person = decider.user
    approve = links.decision_token(approval, person, Outcome.APPROVED)
    reject = links.decision_token(approval, person, Outcome.REJECTED)
    tokens.extend((approve, reject))
    context = {
        "approval": approval,
        "purpose": purpose.value,
        "person": person,
        "on_behalf_of": decider.on_behalf_of,
        "approve_url": links.link(approval, approve),
        "reject_url": links.link(approval, reject),
        "page_url": wire.page_url(approval),
        "handed": handed,
    }
    return compose("request", context, person.email, connection=connection)


def compose(name: str, context: dict, to: str, connection=None) -> mail.EmailMultiAlternatives:
    """A mail to one address from the templates `approvals/email/<name>_subject.txt`,
    `<name>.txt` and `<name>.html` (text, with the HTML as its alternative)."""
    # One line, whatever the title holds: mail headers cannot carry line breaks.
    subject = " ".join(render_to_string(f"approvals/email/{name}_subject.txt", context).split())
    message = mail.EmailMultiAlternatives(
        subject,
        render_to_string(f"approvals/email/{name}.txt", context),
        to=[to.strip()],
        connection=connection,
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(
        render_to_string(f"approvals/email/{name}.html", context), "text/html"
    )
    return message


def describe_failure(exc: Exception, tokens: list[str]) -> str:
    """The failure in a line, without any link's token (a server may quote the message back)."""
    text = f"{type(exc).__name__}: {exc}"
    for token in tokens:
        text = text.replace(token, "[link]").replace(quote_plus(token), "[link]")
    return text[:300]


def tell_delegate(delegation) -> bool:
    """E-mail the person just named a delegate: for whom, from when until when, where the
    requests will appear. Return whether it was sent.

    A failure is logged, never raised: the delegation stands either way, and the page that named
    them lists it for both. (There is no request to record an audit event on.)
    """
    delegate = delegation.delegate
    context = {
        "delegation": delegation,
        "delegator_email": permissions.user_email(delegation.delegator),
        "inbox_url": settings.APPROVALS_BASE_URL + reverse("approvals:inbox"),
        "delegations_url": settings.APPROVALS_BASE_URL + reverse("approvals:delegations"),
    }
    subject = " ".join(render_to_string("approvals/email/delegation_subject.txt", context).split())
    log_fields = {"delegation_id": delegation.pk, "delegate": permissions.user_email(delegate)}
    try:
        mail.EmailMessage(
            subject,
            render_to_string("approvals/email/delegation.txt", context),
            to=[delegate.email.strip()],
            headers={"Auto-Submitted": "auto-generated"},
        ).send()
    except Exception as exc:  # noqa: BLE001 - any mail failure is logged, not raised
        logger.warning(
            "Could not tell %s they were named a delegate: %s",
            permissions.user_email(delegate),
            describe_failure(exc, []),
            extra={"json_fields": log_fields},
        )
        return False
    logger.info(
        "Told %s they were named a delegate",
        permissions.user_email(delegate),
        extra={"json_fields": log_fields},
    )
    return True
