"""The requester's e-mail when their request closes, through a real SMTP server
(`standins.smtp`): made due in the closing transaction, sent once by `send_notifications`, never
by the call that closed it; skipped with `notify_requester: false`; retried when it fails."""

import datetime
import io
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.utils import timezone

from approvals.models import ApprovalRequest, AuditEvent, Notice
from approvals.notify import outbox
from approvals.notify.channels import email as email_channel
from approvals.tests.conftest import API_TOKEN, decide_page

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTER = "alice@example.com"


def run_command() -> str:
    out = io.StringIO()
    call_command("send_notifications", stdout=out)
    return out.getvalue().strip()


def post_api(client, path, body):
    return client.post(
        path,
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )


def events(request_id, kind) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(request_id=request_id, kind=kind).order_by("at", "pk"))


@pytest.fixture
def open_request(register, manager, smtp):
    """A request from alice for the manager, its first notice sent and the SMTP log emptied."""
    created = register(title="Team offsite", assignees=["manager@example.com"])
    run_command()
    smtp.clear()
    return created


def test_an_approval_mails_the_requester_once_from_the_pass_not_the_deciding_request(
    client, open_request, manager, smtp
):
    response = decide_page(client, manager, open_request["id"], comment="Enjoy Lisbon")
    assert response.status_code == 302
    assert smtp.messages == []  # nothing inside the deciding request
    assert ApprovalRequest.objects.get(pk=open_request["id"]).requester_notice_due_at is not None

    assert run_command().endswith("Told 1 requester(s) the outcome.")

    [received] = smtp.messages
    assert received.rcpt_tos == (REQUESTER,)
    assert received.subject == "Approved: Team offsite (120.50 EUR)"
    assert received.message["Auto-Submitted"] == "auto-generated"
    text = received.text
    assert "Your request was approved:" in text
    assert "Approved by manager@example.com" in text
    assert "Comment: Enjoy Lisbon" in text
    assert f"http://testserver/approvals/{open_request['id']}/" in text
    html = received.part("text/html")
    assert "Enjoy Lisbon" in html and f"/approvals/{open_request['id']}/" in html
    [told] = events(open_request["id"], AuditEvent.Kind.OUTCOME_MAILED)
    assert told.actor == "system"
    assert told.payload == {
        "recipients": [REQUESTER],
        "purpose": "outcome",
        "status": "approved",
        "channel": "email",
    }
    assert ApprovalRequest.objects.get(pk=open_request["id"]).requester_notice_due_at is None

    assert run_command() == "E-mailed about 0 request(s); escalated 0 request(s)."
    assert len(smtp.messages) == 1


def test_a_rejection_tells_the_requester_who_rejected_and_why(client, open_request, manager, smtp):
    decide_page(client, manager, open_request["id"], outcome="rejected", comment="Over budget")

    run_command()

    [received] = smtp.to(REQUESTER)
    assert received.subject == "Rejected: Team offsite (120.50 EUR)"
    assert "Your request was rejected:" in received.text
    assert "Rejected by manager@example.com" in received.text
    assert "Comment: Over budget" in received.text


def test_every_approval_of_a_two_approval_request_is_in_the_mail(client, register, make_user, smtp):
    bea, carl = make_user("bea"), make_user("carl")
    created = register(assignees=["bea@example.com", "carl@example.com"], required_approvals=2)
    run_command()
    smtp.clear()

    decide_page(client, bea, created["id"], comment="First")
    run_command()
    assert smtp.to(REQUESTER) == []  # still open: nothing to tell yet

    decide_page(client, carl, created["id"], comment="Second")
    run_command()

    [received] = smtp.to(REQUESTER)
    text = received.text
    assert text.index("Approved by bea@example.com") < text.index("Approved by carl@example.com")
    assert "Comment: First" in text and "Comment: Second" in text


def test_a_cancel_through_the_api_tells_the_requester(client, open_request, smtp):
    response = post_api(client, f"/api/approvals/{open_request['id']}/cancel", {})
    assert response.status_code == 200
    assert smtp.messages == []

    run_command()

    [received] = smtp.to(REQUESTER)
    assert received.subject == "Cancelled: Team offsite (120.50 EUR)"
    assert "Your request was cancelled by its workflow:" in received.text
    assert "stopped waiting for a decision" in received.text


def test_an_expiry_seen_on_the_page_tells_the_requester(client, open_request, manager, smtp):
    ApprovalRequest.objects.filter(pk=open_request["id"]).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    client.force_login(manager)
    assert client.get(f"/approvals/{open_request['id']}/").status_code == 200
    assert smtp.messages == []

    run_command()

    [received] = smtp.to(REQUESTER)
    assert received.subject == "Expired: Team offsite (120.50 EUR)"
    assert "Nobody decided it before it expired." in received.text


def test_notify_requester_false_sends_nothing_and_is_kept_in_the_audit(
    client, register, manager, smtp
):
    created = register(assignees=["manager@example.com"], notify_requester=False)
    run_command()
    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert approval.notify_requester is False
    registered = events(created["id"], AuditEvent.Kind.REGISTERED)[0]
    assert registered.payload["notify_requester"] is False

    decide_page(client, manager, created["id"], comment="Fine")
    run_command()

    assert smtp.to(REQUESTER) == []
    assert events(created["id"], AuditEvent.Kind.OUTCOME_MAILED) == []
    assert ApprovalRequest.objects.get(pk=created["id"]).requester_notice_due_at is None


@pytest.mark.parametrize("value", ["yes", 1, 0, [], {}])
def test_a_non_boolean_notify_requester_is_a_400_naming_it(client, registration_body, value):
    response = post_api(client, "/api/approvals", registration_body(notify_requester=value))

    assert response.status_code == 400
    assert response.json()["fields"] == {"notify_requester": ["Must be true or false."]}
    assert not ApprovalRequest.objects.exists()


def test_a_refused_mail_is_recorded_and_sent_once_on_a_later_pass(
    client, open_request, manager, smtp
):
    decide_page(client, manager, open_request["id"], comment="OK")
    smtp.refuse = True

    run_command()

    assert smtp.messages == []
    [failed] = events(open_request["id"], AuditEvent.Kind.OUTCOME_MAIL_FAILED)
    assert failed.payload["recipients"] == [REQUESTER]
    assert failed.payload["retry"] is True and "550" in failed.payload["error"]
    [due] = Notice.objects.filter(request_id=open_request["id"], purpose="outcome")
    assert due.state == Notice.State.DUE
    assert due.due_at > timezone.now()  # again later, not in the same pass

    smtp.refuse = False
    assert run_command() == "E-mailed about 0 request(s); escalated 0 request(s)."  # not yet
    Notice.objects.filter(pk=due.pk).update(due_at=timezone.now())
    run_command()
    run_command()

    assert len(smtp.to(REQUESTER)) == 1
    assert len(events(open_request["id"], AuditEvent.Kind.OUTCOME_MAILED)) == 1


def test_a_mail_refused_for_a_day_is_given_up(client, open_request, manager, smtp):
    decide_page(client, manager, open_request["id"], comment="OK")
    smtp.refuse = True
    run_command()
    now = timezone.now()
    Notice.objects.filter(request_id=open_request["id"], purpose="outcome").update(
        created_at=now - outbox.GIVE_UP_AFTER, due_at=now
    )

    run_command()

    first, last = events(open_request["id"], AuditEvent.Kind.OUTCOME_MAIL_FAILED)
    assert first.payload["retry"] is True and last.payload["retry"] is False
    [notice] = Notice.objects.filter(request_id=open_request["id"], purpose="outcome")
    assert notice.state == Notice.State.FAILED and notice.due_at is None
    assert ApprovalRequest.objects.get(pk=open_request["id"]).requester_notice_due_at is None


def test_the_decisions_inputs_are_shown_when_decisions_have_them():
    """A decision with inputs shows them in the order given, an empty one as a dash; one with
    none shows none."""
    with_inputs = SimpleNamespace(outcome="approved", inputs={"cost_center": "CC-7", "note": None})
    without = SimpleNamespace(outcome="rejected", inputs={})

    assert email_channel._decision_context(with_inputs)["inputs"] == [
        ("cost_center", "CC-7"),
        ("note", "—"),
    ]
    assert email_channel._decision_context(without)["inputs"] == []
