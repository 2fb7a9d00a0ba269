"""Reminders and escalation of pending requests (notify/reminders.py, `send_notifications`).

Time moves by rewriting a request's times in the database, never by sleeping: pulling
`created_at` and `expires_at` back puts "now" further into the request's life.
"""

import datetime
import io
import smtplib
import threading

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from approvals import audit, permissions, services
from approvals.models import ApprovalRequest, AuditEvent, Delegation, Notice, Status
from approvals.notify import outbox, reminders
from approvals.tests.conftest import postgres_only
from approvals.wire import iso_utc

# Real transactions: every mail goes out once its transaction commits (transaction.on_commit).
pytestmark = pytest.mark.django_db(transaction=True)

DAY = datetime.timedelta(days=1)
SECOND = datetime.timedelta(seconds=1)
HOUR = datetime.timedelta(hours=1)


class RefusingBackend(BaseEmailBackend):
    """A mail server that cannot be reached."""

    def open(self):
        raise smtplib.SMTPConnectError(421, "mail.example.com: service not available")

    def send_messages(self, email_messages):
        self.open()


@pytest.fixture
def register(register):
    """Register through the API and run the notice pass once, as the job would right after: the
    first notice goes out and the next e-mail moves to the first reminder point."""

    def post(**fields):
        created = register(**fields)
        reminders.send_due_notices()
        return created

    return post


@pytest.fixture
def team(make_user):
    """Approvers around requests from alice@example.com, who has no account."""
    return {name: make_user(name) for name in ("manager", "bea", "carl")}


def stored(request_id) -> ApprovalRequest:
    return ApprovalRequest.objects.get(pk=request_id)


def move(request_id, **times) -> ApprovalRequest:
    ApprovalRequest.objects.filter(pk=request_id).update(**times)
    return stored(request_id)


def live_for(request_id, lived, left) -> ApprovalRequest:
    """Make the request `lived` old with `left` to go, its reminder still at the first point
    registration chose for that lifetime (as if the job had not run since)."""
    now = timezone.now()
    created_at, expires_at = now - lived, now + left
    first = reminders.next_reminder_at(created_at, expires_at, after=created_at)
    return move(request_id, created_at=created_at, expires_at=expires_at, next_reminder_at=first)


def events(request_id, kind) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(request_id=request_id, kind=kind).order_by("at", "pk"))


def verify_audit_chains():
    """Where the audit log's chains break (None: nowhere)."""
    return audit.check(AuditEvent.objects.order_by("request_id", "pk")).broken


def recipients(mailoutbox) -> list[str]:
    return sorted(address for message in mailoutbox for address in message.to)


def run_command() -> str:
    out = io.StringIO()
    call_command("send_notifications", stdout=out)
    return out.getvalue().strip()


# --- When reminders are due ----------------------------------------------------------------------


def test_after_the_first_notice_the_next_e_mail_is_halfway_through_a_three_day_request(register):
    created = register(timeout_seconds=3 * 86400)

    approval = stored(created["id"])
    assert approval.next_reminder_at == approval.created_at + 1.5 * DAY
    # Then a day before expiry, then nothing more.
    after_first = reminders.next_reminder_at(
        approval.created_at, approval.expires_at, after=approval.next_reminder_at
    )
    assert after_first == approval.expires_at - DAY
    assert reminders.next_reminder_at(approval.created_at, approval.expires_at, after_first) is None


def test_a_two_hour_request_skips_the_point_a_day_before_its_expiry(register):
    created = register(timeout_seconds=2 * 3600)

    approval = stored(created["id"])
    assert approval.next_reminder_at == approval.created_at + HOUR
    assert (
        reminders.next_reminder_at(
            approval.created_at, approval.expires_at, approval.next_reminder_at
        )
        is None
    )


def test_no_reminder_is_planned_when_the_setting_is_empty(register, settings):
    settings.APPROVALS_REMINDERS = ""

    created = register(timeout_seconds=3 * 86400)

    assert stored(created["id"]).next_reminder_at is None


@pytest.mark.parametrize(
    ("text", "points"),
    [
        ("50%,1d", [(0.5, None), (None, DAY)]),
        (
            " 12.5% , 4h,30m ,90s",
            [
                (0.125, None),
                (None, 4 * HOUR),
                (None, datetime.timedelta(minutes=30)),
                (None, datetime.timedelta(seconds=90)),
            ],
        ),
        ("", []),
    ],
)
def test_reminder_points_that_parse(text, points):
    parsed = reminders.parse_points(text)

    assert [(point.share, point.before_expiry) for point in parsed] == points


@pytest.mark.parametrize(
    "text", ["50", "halfway", "0%", "100%", "150%", "0d", "1w", "-1d", "50%;1d", "1.5d"]
)
def test_reminder_points_that_do_not_parse_say_why(text):
    with pytest.raises(ValueError, match=r"reminder point|share|positive"):
        reminders.parse_points(text)


# --- Sending reminders ---------------------------------------------------------------------------


def test_a_due_reminder_mails_exactly_the_current_deciders_once(register, team, mailoutbox):
    created = register(title="Flights to Lisbon", amount="1234.5", timeout_seconds=3 * 86400)
    mailoutbox.clear()
    approval = live_for(created["id"], lived=1.6 * DAY, left=1.4 * DAY)
    point = approval.next_reminder_at
    assert point < timezone.now()

    assert reminders.send_due_notices() == 1

    deciders = sorted(d.email for d in permissions.deciders(approval))
    assert deciders == ["bea@example.com", "carl@example.com", "manager@example.com"]
    assert recipients(mailoutbox) == deciders
    message = mailoutbox[0]
    assert message.subject == "Reminder: Flights to Lisbon (1,234.50 EUR) waits for your decision"
    assert message.body.splitlines()[2] == "A reminder: this request still waits for your decision."
    assert "Approve:  http://testserver/approvals/" in message.body
    assert "A reminder:" in message.alternatives[0][0]
    [event] = events(created["id"], AuditEvent.Kind.REMINDED)
    assert event.actor == "system"
    assert sorted(event.payload["recipients"]) == deciders
    assert event.payload["point_at"] == iso_utc(point)
    # The next reminder is the one a day before expiry, still ahead.
    assert stored(created["id"]).next_reminder_at == approval.expires_at - DAY

    # A second pass right after finds nothing due.
    assert reminders.send_due_notices() == 0
    assert len(mailoutbox) == 3
    assert len(events(created["id"], AuditEvent.Kind.REMINDED)) == 1


def test_several_points_passed_while_the_job_was_down_give_one_reminder(register, team, mailoutbox):
    created = register(timeout_seconds=3 * 86400)
    mailoutbox.clear()
    # Both the halfway point and the point a day before expiry have passed.
    approval = live_for(created["id"], lived=2.5 * DAY, left=0.5 * DAY)

    assert reminders.send_due_notices() == 1
    assert reminders.send_due_notices() == 0

    assert len(mailoutbox) == 3  # one each
    [event] = events(created["id"], AuditEvent.Kind.REMINDED)
    assert event.payload["point_at"] == iso_utc(approval.next_reminder_at)
    assert stored(created["id"]).next_reminder_at is None


def test_a_reminder_moves_on_to_the_next_point_still_ahead(register, team, settings, mailoutbox):
    settings.APPROVALS_REMINDERS = "25%,50%,75%"
    created = register(timeout_seconds=4 * 86400)
    approval = live_for(created["id"], lived=2.5 * DAY, left=1.5 * DAY)  # 25% and 50% passed

    assert reminders.send_due_notices() == 1

    assert stored(created["id"]).next_reminder_at == approval.created_at + 3 * DAY


@pytest.mark.parametrize("ending", ["decided", "cancelled", "expired", "expiry recorded"])
def test_closed_requests_get_neither_reminders_nor_escalations(
    register, team, make_user, mailoutbox, ending
):
    make_user("erin")
    created = register(
        assignees=["manager@example.com"],
        escalate_to=["erin@example.com"],
        escalate_after_seconds=3600,
        timeout_seconds=3 * 86400,
        # The requester's outcome mail on closing is another test's (test_requester_mail.py):
        # here, nothing at all goes out about a closed request.
        notify_requester=False,
    )
    past = timezone.now() - HOUR
    if ending == "decided":
        services.decide(created["id"], team["manager"], "approved", "")
    elif ending == "cancelled":
        services.cancel(created["id"], "api-token")
    else:
        move(created["id"], created_at=past - 3 * DAY, expires_at=past)
        if ending == "expiry recorded":
            assert services.expire(created["id"])
    move(created["id"], next_reminder_at=past, escalates_at=past)
    mailoutbox.clear()

    assert run_command() == "E-mailed about 0 request(s); escalated 0 request(s)."

    assert mailoutbox == []
    for kind in (AuditEvent.Kind.REMINDED, AuditEvent.Kind.ESCALATED):
        assert events(created["id"], kind) == []
    assert stored(created["id"]).escalated_at is None


def test_who_already_approved_a_two_approval_request_is_not_reminded(register, team, mailoutbox):
    created = register(required_approvals=2, timeout_seconds=3 * 86400)
    services.decide(created["id"], team["manager"], "approved", "")
    live_for(created["id"], lived=1.6 * DAY, left=1.4 * DAY)
    mailoutbox.clear()

    assert reminders.send_due_notices() == 1

    assert recipients(mailoutbox) == ["bea@example.com", "carl@example.com"]
    assert stored(created["id"]).status == Status.PENDING


def test_a_delegate_is_reminded_and_told_whom_they_stand_in_for(register, make_user, mailoutbox):
    manager = make_user("manager")
    dan = make_user("dan")
    now = timezone.now()
    Delegation.objects.create(
        delegator=manager, delegate=dan, starts_at=now - HOUR, ends_at=now + 7 * DAY
    )
    created = register(assignees=["manager@example.com"], timeout_seconds=3 * 86400)
    new = {message.to[0]: message for message in mailoutbox}
    live_for(created["id"], lived=1.6 * DAY, left=1.4 * DAY)
    mailoutbox.clear()

    reminders.send_due_notices()

    reminded = {message.to[0]: message for message in mailoutbox}
    for messages in (new, reminded):
        assert set(messages) == {"manager@example.com", "dan@example.com"}
        as_delegate = "You receive this as the delegate of manager@example.com"
        assert as_delegate in messages["dan@example.com"].body
        assert as_delegate in messages["dan@example.com"].alternatives[0][0]
        assert "delegate" not in messages["manager@example.com"].body
        assert "delegate" not in messages["manager@example.com"].alternatives[0][0]


def test_a_request_nobody_may_decide_is_not_reminded_but_moves_on(
    register, make_user, mailoutbox, caplog
):
    make_user("nora", approver=False)
    created = register(assignees=["nora@example.com"], timeout_seconds=3 * 86400)
    live_for(created["id"], lived=1.6 * DAY, left=1.4 * DAY)

    assert reminders.send_due_notices() == 1

    assert mailoutbox == []
    assert events(created["id"], AuditEvent.Kind.REMINDED) == []
    assert stored(created["id"]).next_reminder_at > timezone.now()
    [line] = [r for r in caplog.records if "so nobody was reminded" in r.getMessage()]
    assert line.levelname == "WARNING"
    assert line.json_fields == {"request_id": created["id"], "purpose": "reminder"}


# --- Escalation ----------------------------------------------------------------------------------


@pytest.fixture
def escalated_request(register, team, make_user):
    """A request for the manager that escalates to erin after an hour; erin may decide nothing
    else."""
    make_user("erin")
    return register(
        title="Flights to Lisbon",
        assignees=["manager@example.com"],
        escalate_to=["erin@example.com"],
        escalate_after_seconds=3600,
        timeout_seconds=3 * 86400,
    )


def test_before_its_escalation_time_an_escalation_target_may_not_decide_nor_is_told(
    escalated_request, client, mailoutbox
):
    request_id = escalated_request["id"]
    erin = get_user_model().objects.get(username="erin")

    assert recipients(mailoutbox) == ["manager@example.com"]
    approval = stored(request_id)
    assert approval.escalates_at == approval.created_at + HOUR
    assert (
        permissions.decision_refusal(erin, approval) == "This request is assigned to other people."
    )
    assert run_command() == "E-mailed about 0 request(s); escalated 0 request(s)."
    assert recipients(mailoutbox) == ["manager@example.com"]
    client.force_login(erin)
    response = client.post(
        f"/approvals/{request_id}/decide",
        {"outcome": "approved", "comment": "", "confirmed": "on"},
    )
    assert response.status_code == 404  # she cannot even see it yet
    assert stored(request_id).status == Status.PENDING


def test_after_its_escalation_time_an_escalation_target_may_decide_before_the_command_runs(
    escalated_request, client, receiver
):
    request_id = escalated_request["id"]
    move(request_id, escalates_at=timezone.now() - datetime.timedelta(seconds=1))
    erin = get_user_model().objects.get(username="erin")

    assert permissions.decision_refusal(erin, stored(request_id)) is None
    client.force_login(erin)
    response = client.post(
        f"/approvals/{request_id}/decide",
        {"outcome": "approved", "comment": "Covering for the manager", "confirmed": "on"},
    )

    assert response.status_code == 302
    approval = stored(request_id)
    assert approval.status == Status.APPROVED
    assert approval.decisions.get().decided_by == "erin@example.com"
    assert approval.escalated_at is None  # nobody told her; she found it in her inbox
    assert reminders.escalate_due() == 0  # decided: nothing left to escalate


def test_the_command_escalates_once_and_tells_only_the_escalation_targets(
    escalated_request, mailoutbox
):
    request_id = escalated_request["id"]
    escalates_at = timezone.now() - HOUR
    move(request_id, escalates_at=escalates_at)
    mailoutbox.clear()

    assert run_command() == "E-mailed about 0 request(s); escalated 1 request(s)."

    [message] = mailoutbox
    assert message.to == ["erin@example.com"]
    assert message.subject == "Escalated to you: Flights to Lisbon (120.50 EUR)"
    assert "This request was escalated to you" in message.body
    assert "This request was escalated to you" in message.alternatives[0][0]
    approval = stored(request_id)
    assert approval.escalated_at is not None
    [escalated] = events(request_id, AuditEvent.Kind.ESCALATED)
    assert escalated.actor == "system"
    assert escalated.payload == {
        "escalate_to": ["erin@example.com"],
        "escalates_at": iso_utc(escalates_at),
    }
    notified = events(request_id, AuditEvent.Kind.NOTIFIED)
    assert [e.payload["purpose"] for e in notified] == ["new", "escalation"]
    assert notified[1].payload["recipients"] == ["erin@example.com"]

    assert run_command() == "E-mailed about 0 request(s); escalated 0 request(s)."
    assert len(mailoutbox) == 1
    assert len(events(request_id, AuditEvent.Kind.ESCALATED)) == 1
    assert stored(request_id).escalated_at == approval.escalated_at


def test_escalation_to_a_group_tells_its_approvers_and_lets_them_decide(
    register, team, make_user, mailoutbox
):
    finance = Group.objects.create(name="finance")
    fiona, frank = make_user("fiona"), make_user("frank")
    make_user("outsider", approver=False).groups.add(finance)  # in the group, not an approver
    finance.user_set.add(fiona, frank)
    created = register(
        assignees=["manager@example.com"],
        escalate_to=["finance"],
        escalate_after_seconds=600,
        timeout_seconds=86400,
    )
    move(created["id"], escalates_at=timezone.now() - HOUR)
    mailoutbox.clear()

    assert reminders.escalate_due() == 1

    assert recipients(mailoutbox) == ["fiona@example.com", "frank@example.com"]
    [escalated] = events(created["id"], AuditEvent.Kind.ESCALATED)
    assert escalated.payload["escalate_to"] == ["group finance"]
    services.decide(created["id"], frank, "rejected", "Not this quarter")
    assert stored(created["id"]).status == Status.REJECTED


def test_an_assignee_who_is_also_an_escalation_target_is_not_told_it_escalated(
    register, team, make_user, mailoutbox
):
    finance = Group.objects.create(name="finance")
    fiona = make_user("fiona")
    finance.user_set.add(fiona, team["manager"])
    created = register(
        assignees=["manager@example.com"],
        escalate_to=["finance"],
        escalate_after_seconds=600,
        timeout_seconds=86400,
    )
    move(created["id"], escalates_at=timezone.now() - HOUR)
    mailoutbox.clear()

    assert reminders.escalate_due() == 1

    # The manager could decide all along; only fiona is newly let in.
    assert recipients(mailoutbox) == ["fiona@example.com"]


def test_an_escalated_request_is_reminded_to_assignees_and_escalation_targets(
    escalated_request, mailoutbox
):
    request_id = escalated_request["id"]
    live_for(request_id, lived=1.6 * DAY, left=1.4 * DAY)
    move(request_id, escalates_at=timezone.now() - DAY, escalated_at=timezone.now() - DAY)
    mailoutbox.clear()

    assert run_command() == "E-mailed about 1 request(s); escalated 0 request(s)."

    assert recipients(mailoutbox) == ["erin@example.com", "manager@example.com"]
    assert {m.subject for m in mailoutbox} == {
        "Reminder: Flights to Lisbon (120.50 EUR) waits for your decision"
    }


# --- Passes at once ------------------------------------------------------------------------------


def two_passes_at_once(function) -> list[int]:
    """Run `function` in two threads released together, each with its own connection."""
    barrier = threading.Barrier(2)
    results = []

    def run():
        try:
            barrier.wait()
            results.append(function())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@postgres_only
def test_two_passes_at_once_send_each_reminder_and_escalation_once(escalated_request, mailoutbox):
    request_id = escalated_request["id"]
    for _ in range(5):
        live_for(request_id, lived=1.6 * DAY, left=1.4 * DAY)
        move(request_id, escalates_at=timezone.now() - HOUR, escalated_at=None)
        mailoutbox.clear()

        assert sum(two_passes_at_once(reminders.escalate_due)) == 1
        assert sum(two_passes_at_once(reminders.send_due_notices)) == 1

        assert sorted(m.subject.split(":")[0] for m in mailoutbox) == [
            "Escalated to you",
            "Reminder",
            "Reminder",
        ]
    assert len(events(request_id, AuditEvent.Kind.ESCALATED)) == 5
    assert len(events(request_id, AuditEvent.Kind.REMINDED)) == 5


def due_mix(register, reminded: int, first: int) -> tuple[list, list]:
    """Requests whose reminder is due (`reminded` of them) and whose first notice is due
    (`first`), as a month-end pass finds them; (reminder ids, first-notice ids)."""
    later = [register(title=f"Reminded {n}")["id"] for n in range(reminded)]
    new = [register(title=f"New {n}")["id"] for n in range(first)]
    for request_id in later:  # registered first: each registration here runs a pass
        live_for(request_id, lived=1.6 * DAY, left=1.4 * DAY)
    for request_id in new:
        move(request_id, notified_at=None, next_reminder_at=timezone.now())
    return later, new


def test_a_pass_takes_its_requests_in_batches_and_tells_each_its_own_notice_once(
    register, team, monkeypatch, mailoutbox
):
    monkeypatch.setattr(reminders, "REMIND_BATCH", 3)
    later, new = due_mix(register, reminded=4, first=3)
    mailoutbox.clear()

    assert reminders.send_due_notices() == 7

    subjects = sorted(m.subject.split(" (")[0] for m in mailoutbox)
    expected = [f"Reminder: Reminded {n}" for n in range(4)]
    expected += [f"Approval needed: New {n}" for n in range(3)]
    assert subjects == sorted(subject for subject in expected for _ in team)
    for request_id in later:
        [event] = events(request_id, AuditEvent.Kind.REMINDED)
        assert sorted(event.payload["recipients"]) == sorted(p.email for p in team.values())
    for request_id in new:
        assert len(events(request_id, AuditEvent.Kind.NOTIFIED)) == 2  # registration's, and this
        assert stored(request_id).next_reminder_at > timezone.now()
    assert reminders.send_due_notices() == 0
    assert verify_audit_chains() is None


@postgres_only
def test_two_passes_at_once_over_many_requests_tell_each_request_once(
    register, team, monkeypatch, mailoutbox
):
    monkeypatch.setattr(reminders, "REMIND_BATCH", 3)
    later, new = due_mix(register, reminded=10, first=10)
    mailoutbox.clear()

    assert sum(two_passes_at_once(reminders.send_due_notices)) == 20

    assert len(mailoutbox) == 20 * len(team)
    assert len({(m.subject, m.to[0]) for m in mailoutbox}) == 20 * len(team)
    for request_id in later:
        assert len(events(request_id, AuditEvent.Kind.REMINDED)) == 1
    for request_id in new:
        assert len(events(request_id, AuditEvent.Kind.NOTIFIED)) == 2
    assert verify_audit_chains() is None


# --- A mail server that fails --------------------------------------------------------------------


def test_a_failing_mail_server_is_recorded_and_the_reminder_tried_again_later(
    escalated_request, settings, caplog
):
    request_id = escalated_request["id"]
    approval = live_for(request_id, lived=1.6 * DAY, left=1.4 * DAY)
    move(request_id, escalates_at=timezone.now() - HOUR)
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    before = timezone.now()

    assert run_command() == "E-mailed about 1 request(s); escalated 1 request(s)."
    assert run_command() == "E-mailed about 0 request(s); escalated 0 request(s)."

    after = stored(request_id)
    assert after.escalated_at is not None  # the escalation is told once, even when it failed
    # Nobody got the reminder: each mail is due again a little later rather than lost.
    due = Notice.objects.filter(request_id=request_id, state=Notice.State.DUE)
    assert due.count() == 3  # the escalation to erin; the reminder to erin and the manager
    for notice in due:
        retry = notice.due_at - before
        assert outbox.RETRY_DELAY <= retry <= outbox.RETRY_DELAY + 10 * SECOND
    assert len(events(request_id, AuditEvent.Kind.ESCALATED)) == 1
    assert events(request_id, AuditEvent.Kind.REMINDED) == []
    failed = {e.payload["purpose"]: e for e in events(request_id, AuditEvent.Kind.NOTIFY_FAILED)}
    assert set(failed) == {"escalation", "reminder"}
    assert failed["escalation"].payload["recipients"] == ["erin@example.com"]
    assert sorted(failed["reminder"].payload["recipients"]) == [
        "erin@example.com",
        "manager@example.com",
    ]
    assert failed["reminder"].payload["point_at"] == iso_utc(approval.next_reminder_at)
    for event in failed.values():
        assert event.actor == "system"
        assert event.payload["error"].startswith("SMTPConnectError")
    assert "Could not send the reminder notice of request" in caplog.text


class StopLoop(Exception):
    pass


def test_the_command_loops_with_a_pause(escalated_request, monkeypatch):
    passes = []

    def stop_after_two(seconds):
        passes.append(seconds)
        if len(passes) == 2:
            raise StopLoop

    monkeypatch.setattr("approvals.management.passes.time.sleep", stop_after_two)
    out = io.StringIO()
    with pytest.raises(StopLoop):
        call_command("send_notifications", "--loop", "--pause", "7", stdout=out)

    assert passes == [7.0, 7.0]
    assert out.getvalue().count("E-mailed about 0 request(s); escalated 0 request(s).") == 2
