"""Each kind of e-mail to the deciders, sent through a real SMTP server (`standins.smtp`): the
new-request notice, a reminder, an escalation and the delegate notice, as Django's SMTP backend
put them on the wire, parsed back with the standard library's `email`.

The requester's outcome mail has its own file (test_requester_mail.py).
"""

import datetime
import io
import re

import pytest
from django.core.management import call_command
from django.utils import timezone

from approvals.models import ApprovalRequest, AuditEvent, Notice

pytestmark = pytest.mark.django_db(transaction=True)

HOUR = datetime.timedelta(hours=1)
LINK = re.compile(r"^(Approve|Reject):\s+(\S+)$", re.MULTILINE)


def run_command() -> str:
    out = io.StringIO()
    call_command("send_notifications", stdout=out)
    return out.getvalue().strip()


def kinds(request_id) -> list[str]:
    return [
        event.payload.get("purpose", event.kind)
        for event in AuditEvent.objects.filter(request_id=request_id).order_by("at", "pk")
        if event.kind in (AuditEvent.Kind.NOTIFIED, AuditEvent.Kind.REMINDED)
    ]


def test_the_new_request_notice_reaches_the_smtp_server_with_both_parts(smtp, register, make_user):
    make_user("manager")
    created = register(title="Team offsite — Lisbon", assignees=["manager@example.com"])
    assert smtp.messages == []  # never inside the registration call

    assert run_command() == "E-mailed about 1 request(s); escalated 0 request(s)."

    [received] = smtp.messages
    assert received.rcpt_tos == ("manager@example.com",)
    assert received.mail_from == "approver@localhost"
    assert received.subject == "Approval needed: Team offsite — Lisbon (120.50 EUR)"
    assert received.message["Auto-Submitted"] == "auto-generated"
    links = dict(LINK.findall(received.text))
    assert set(links) == {"Approve", "Reject"}
    assert all(
        url.startswith(f"http://testserver/approvals/{created['id']}/") for url in links.values()
    )
    assert f"http://testserver/approvals/{created['id']}/" in received.part("text/html")
    assert kinds(created["id"]) == ["new"]


def test_a_pass_sends_many_requests_notices_over_one_connection_each_audited(
    smtp, register, make_user
):
    make_user("manager")
    make_user("deputy")
    created = [
        register(title=f"Report {n}", assignees=["manager@example.com", "deputy@example.com"])
        for n in range(30)
    ]

    assert run_command() == "E-mailed about 30 request(s); escalated 0 request(s)."

    assert len(smtp.messages) == 60
    assert len({received.peer for received in smtp.messages}) == 1
    for row in created:
        [event] = AuditEvent.objects.filter(request_id=row["id"], kind=AuditEvent.Kind.NOTIFIED)
        assert sorted(event.payload["recipients"]) == ["deputy@example.com", "manager@example.com"]
    assert set(Notice.objects.values_list("state", "attempts")) == {(Notice.State.SENT, 1)}


def test_a_reminder_reaches_the_smtp_server(smtp, register, make_user):
    make_user("manager")
    created = register(title="Laptop", assignees=["manager@example.com"])
    run_command()
    smtp.clear()
    ApprovalRequest.objects.filter(pk=created["id"]).update(
        next_reminder_at=timezone.now() - datetime.timedelta(seconds=1)
    )

    assert run_command() == "E-mailed about 1 request(s); escalated 0 request(s)."

    [received] = smtp.messages
    assert received.rcpt_tos == ("manager@example.com",)
    assert received.subject.startswith("Reminder: Laptop")
    assert "Approve:" in received.text
    assert kinds(created["id"]) == ["new", "reminder"]


def test_an_escalation_reaches_the_smtp_server(smtp, register, make_user):
    make_user("manager")
    make_user("erin")
    created = register(
        title="Flights to Lisbon",
        assignees=["manager@example.com"],
        escalate_to=["erin@example.com"],
        escalate_after_seconds=3600,
        timeout_seconds=3 * 86400,
    )
    run_command()
    smtp.clear()
    ApprovalRequest.objects.filter(pk=created["id"]).update(escalates_at=timezone.now() - HOUR)

    assert run_command() == "E-mailed about 0 request(s); escalated 1 request(s)."

    [received] = smtp.messages
    assert received.rcpt_tos == ("erin@example.com",)
    assert received.subject == "Escalated to you: Flights to Lisbon (120.50 EUR)"
    assert "This request was escalated to you" in received.text
    assert "This request was escalated to you" in received.part("text/html")


def test_the_delegate_notice_reaches_the_smtp_server(smtp, client, make_user):
    delegator = make_user("a")
    make_user("b")
    client.force_login(delegator)
    ends_at = timezone.localtime(timezone.now() + datetime.timedelta(days=1))

    response = client.post(
        "/delegations/",
        {
            "delegate": "b@example.com",
            "starts_at": "",
            "ends_at": ends_at.strftime("%Y-%m-%dT%H:%M"),
            "note": "Back on Monday",
        },
    )

    assert response.status_code == 302
    [received] = smtp.messages
    assert received.rcpt_tos == ("b@example.com",)
    assert received.subject == "a@example.com named you their delegate"
    assert "Their note: Back on Monday" in received.text
    assert "http://testserver/delegations/" in received.text


def test_a_refusing_smtp_server_is_recorded_and_the_notice_tried_again(smtp, register, make_user):
    make_user("manager")
    created = register(assignees=["manager@example.com"])
    smtp.refuse = True

    run_command()

    assert smtp.messages == []
    failed = AuditEvent.objects.get(request_id=created["id"], kind=AuditEvent.Kind.NOTIFY_FAILED)
    assert failed.payload["recipients"] == ["manager@example.com"]
    assert "550" in failed.payload["error"]
    [notice] = Notice.objects.filter(request_id=created["id"])
    assert notice.state == Notice.State.DUE and notice.due_at > timezone.now()
    smtp.refuse = False
    Notice.objects.filter(pk=notice.pk).update(due_at=timezone.now())

    run_command()

    assert len(smtp.to("manager@example.com")) == 1
