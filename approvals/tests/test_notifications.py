"""E-mail to the people who may decide a request, and the signed links that open its decision."""

import datetime
import io
import json
import re
import smtplib
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core import signing
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.utils import timezone

from approvals import permissions, services
from approvals.models import ApprovalRequest, AuditEvent, Decision, Notice, Status
from approvals.notify import links as mail_links
from approvals.notify import outbox, reminders
from approvals.tests.conftest import API_TOKEN

# Real transactions: the notice pass mails once its turn is committed (transaction.on_commit).
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def register(register):
    """Register through the API, then run the notice pass (`send_notifications`), which sends
    the first notice: what this file is about is the mail, not when the job runs."""

    def post(**fields):
        created = register(**fields)
        reminders.send_due_notices()
        return created

    return post


LINK = re.compile(r"^(Approve|Reject):\s+(\S+)$", re.MULTILINE)


class RefusingBackend(BaseEmailBackend):
    """A mail server that cannot be reached."""

    def open(self):
        raise smtplib.SMTPConnectError(421, "mail.example.com: service not available")

    def send_messages(self, email_messages):
        self.open()


class RefusingOneBackend(BaseEmailBackend):
    """A mail server that refuses mail to bea@example.com and takes the rest."""

    def send_messages(self, email_messages):
        for message in email_messages:
            if message.to == ["bea@example.com"]:
                raise smtplib.SMTPRecipientsRefused({"bea@example.com": (550, b"no such user")})
        return len(email_messages)


class EchoingBackend(BaseEmailBackend):
    """A mail server that refuses each message and quotes it back, links and all."""

    def send_messages(self, email_messages):
        body = email_messages[0].body
        raise smtplib.SMTPDataError(554, "rejected: " + body[body.index("Approve:") :][:250])


@pytest.fixture
def team(make_user):
    """People around a request from alice@example.com, one of each kind."""
    direct = make_user("dora", approver=False)
    direct.user_permissions.add(
        Permission.objects.get(
            codename="decide_approvalrequest", content_type__app_label="approvals"
        )
    )
    return {
        "manager": make_user("manager"),
        "bea": make_user("bea", email="Bea@Example.com"),
        "dora": direct,
        "root": make_user("root", approver=False, is_superuser=True),
        "alice": make_user("alice", email="ALICE@example.com"),  # the requester, an approver too
        "nora": make_user("nora", approver=False),  # no permission
        "ivan": make_user("ivan", is_active=False),  # left the company
        "nomail": make_user("nomail", email=""),
    }


def links(message) -> dict[str, str]:
    """The mail's action links, as paths on the test server, by action."""
    found = dict(LINK.findall(message.body))
    assert set(found) == {"Approve", "Reject"}, message.body
    return {action: url.removeprefix("http://testserver") for action, url in found.items()}


def mail_to(mailoutbox, user):
    [message] = [m for m in mailoutbox if m.to == [user.email]]
    return message


def assert_nothing_decided(request_id, receiver):
    assert not Decision.objects.filter(request_id=request_id).exists()
    assert receiver.received == []


# --- Who gets the mail ---------------------------------------------------------------------------


def test_registration_sends_no_mail_itself_the_notice_pass_does(
    client, registration_body, team, mailoutbox
):
    response = client.post(
        "/api/approvals",
        registration_body(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )

    assert response.status_code == 201 and mailoutbox == []
    assert ApprovalRequest.objects.get(pk=response.json()["id"]).notified_at is None
    out = io.StringIO()
    call_command("send_notifications", stdout=out)
    assert out.getvalue().strip() == "E-mailed about 1 request(s); escalated 0 request(s)."
    assert len(mailoutbox) == 4
    assert ApprovalRequest.objects.get(pk=response.json()["id"]).notified_at is not None
    call_command("send_notifications", stdout=io.StringIO())
    assert len(mailoutbox) == 4  # once


def test_the_mail_goes_to_exactly_the_people_who_may_decide(register, team, mailoutbox):
    created = register(requester_email="Alice@Example.com")

    assert sorted(m.to[0] for m in mailoutbox) == [
        "Bea@example.com",
        "dora@example.com",
        "manager@example.com",
        "root@example.com",
    ]
    [event] = AuditEvent.objects.filter(request_id=created["id"], kind=AuditEvent.Kind.NOTIFIED)
    assert event.actor == "system"
    assert sorted(event.payload["recipients"]) == sorted(m.to[0] for m in mailoutbox)


def test_only_the_assignees_who_may_decide_are_mailed_when_the_request_names_them(
    register, team, mailoutbox
):
    register(assignees=["BEA@example.com", "nora@example.com", "ivan@example.com"])

    assert [m.to for m in mailoutbox] == [["Bea@example.com"]]


def test_a_second_registration_of_the_same_callback_mails_nobody_again(
    register, registration_body, team, mailoutbox, client
):
    body = registration_body()
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    first = client.post("/api/approvals", body, content_type="application/json", headers=headers)
    reminders.send_due_notices()
    again = client.post("/api/approvals", body, content_type="application/json", headers=headers)
    reminders.send_due_notices()

    assert (first.status_code, again.status_code) == (201, 200)
    assert len(mailoutbox) == 4


@pytest.mark.parametrize(
    "shape",
    ["open", "assigned", "assigned to a non-approver", "decided", "expired"],
)
def test_deciders_agree_with_decision_refusal_for_every_user(register, team, make_user, shape):
    make_user("padded", email="Padded@EXAMPLE.com")
    fields = {
        "open": {},
        "assigned": {"assignees": ["padded@example.com", "bea@example.com", "alice@example.com"]},
        "assigned to a non-approver": {"assignees": ["nora@example.com"]},
        "decided": {},
        "expired": {},
    }[shape]
    created = register(requester_email="alice@example.com", **fields)
    if shape == "decided":
        services.decide(created["id"], team["manager"], "approved", "")
    if shape == "expired":
        ApprovalRequest.objects.filter(pk=created["id"]).update(
            expires_at=timezone.now() - datetime.timedelta(seconds=1)
        )
    approval = ApprovalRequest.objects.get(pk=created["id"])

    chosen = {decider.user.pk for decider in permissions.deciders(approval)}

    users = get_user_model().objects.all()
    assert len(users) == 9
    for user in users:
        may = permissions.decision_refusal(user, approval) is None
        assert (user.pk in chosen) == may, (shape, user.username)
    if shape in ("open", "assigned"):
        assert chosen  # the comparison above is not only about nobody


# --- What the mail holds -------------------------------------------------------------------------


def test_the_mail_holds_the_summary_and_two_links(register, manager, mailoutbox):
    created = register(
        title="Flights to Lisbon",
        requester_email="alice@example.com",
        amount="1234.5",
        currency="EUR",
        external_id="EXP-2026-042",
        timeout_seconds=3 * 3600,
    )

    [message] = mailoutbox
    assert message.to == ["manager@example.com"]
    assert message.subject == "Approval needed: Flights to Lisbon (1,234.50 EUR)"
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"
    for text in (
        "Flights to Lisbon",
        "alice@example.com",
        "1,234.50 EUR",
        "EXP-2026-042",
        "Time left:  2\xa0hours, 59\xa0minutes",
        f"http://testserver/approvals/{created['id']}/",
    ):
        assert text in message.body, text
    found = links(message)
    for path in found.values():
        assert path.startswith(f"/approvals/{created['id']}/email-decision?token=")
    assert found["Approve"] != found["Reject"]
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    for text in ("Flights to Lisbon", "1,234.50 EUR", "EXP-2026-042", "Approve", "Reject"):
        assert text in html, text
    for path in found.values():
        assert f'href="http://testserver{path}"' in html


def test_the_html_mail_escapes_what_the_caller_sent(register, manager, mailoutbox):
    register(title="<script>alert(1)</script>", external_id='"><img src=x onerror=alert(2)>')

    [message] = mailoutbox
    html = message.alternatives[0][0]
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert "\n" not in message.subject


# --- The confirmation page -----------------------------------------------------------------------


def test_a_link_opens_a_confirmation_page_and_decides_nothing(
    client, register, manager, mailoutbox, receiver
):
    created = register(title="Flights to Lisbon", amount="120.5", currency="EUR")
    client.force_login(manager)

    response = client.get(links(mailoutbox[0])["Approve"])

    assert response.status_code == 200
    html = response.content.decode()
    assert "Approve “Flights to Lisbon”?" in html
    assert "120.50 EUR" in html and "alice@example.com" in html
    assert ">Comment</label>" in html and "Yes, approve" in html
    assert "no-store" in response["Cache-Control"]
    assert ApprovalRequest.objects.get(pk=created["id"]).status == Status.PENDING
    assert_nothing_decided(created["id"], receiver)


def test_confirming_approves_and_the_workflow_is_told(
    client, register, manager, mailoutbox, receiver
):
    created = register(title="Flights to Lisbon")
    client.force_login(manager)
    link = links(mailoutbox[0])["Approve"]

    response = client.post(link, {"comment": "Enjoy Lisbon"})

    assert response.status_code == 302
    assert response["Location"] == "/"  # the next waiting request, or the inbox when none is left
    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert approval.status == Status.APPROVED
    decision = approval.decisions.get()
    assert (decision.decided_by, decision.comment) == ("manager@example.com", "Enjoy Lisbon")
    [callback] = receiver.received
    assert (callback.body["decision"], callback.body["comment"]) == ("approved", "Enjoy Lisbon")
    page = client.get(response["Location"])
    texts = [str(m) for m in page.context["messages"]]
    assert "You approved “Flights to Lisbon”." in texts

    again = client.post(link, {"comment": "Enjoy Lisbon"})
    assert again.status_code == 410
    assert "already approved by manager@example.com" in again.content.decode()
    assert len(receiver.received) == 1


def test_rejecting_from_a_link_needs_a_comment(client, register, manager, mailoutbox, receiver):
    created = register()
    client.force_login(manager)
    link = links(mailoutbox[0])["Reject"]
    assert "Yes, reject" in client.get(link).content.decode()

    without = client.post(link, {"comment": "  "})

    assert without.status_code == 400
    assert "comment is required" in without.content.decode()
    assert_nothing_decided(created["id"], receiver)

    with_comment = client.post(link, {"comment": "Over budget"})

    assert with_comment.status_code == 302
    assert ApprovalRequest.objects.get(pk=created["id"]).status == Status.REJECTED
    [callback] = receiver.received
    assert (callback.body["decision"], callback.body["comment"]) == ("rejected", "Over budget")


def test_the_outcome_comes_from_the_link_not_the_form(
    client, register, manager, mailoutbox, receiver
):
    created = register()
    client.force_login(manager)

    client.post(links(mailoutbox[0])["Approve"], {"outcome": "rejected", "comment": "Sneaky"})

    assert ApprovalRequest.objects.get(pk=created["id"]).status == Status.APPROVED


# --- Links that are refused ----------------------------------------------------------------------


def assert_refused(client, link, status, text, created, receiver):
    for response in (client.get(link), client.post(link, {"comment": "Trying anyway"})):
        assert response.status_code == status
        html = response.content.decode()
        assert "This link cannot be used" in html and text in html, html
        assert "Yes, approve" not in html
    assert_nothing_decided(created["id"], receiver)


def test_a_tampered_link_is_refused(client, register, manager, mailoutbox, receiver):
    created = register()
    client.force_login(manager)
    link = links(mailoutbox[0])["Reject"]
    tampered = link[:-1] + ("A" if link[-1] != "A" else "B")

    assert_refused(client, tampered, 400, "This link is not valid", created, receiver)
    assert_refused(client, link.split("?")[0], 400, "This link is not valid", created, receiver)


def test_a_link_made_for_another_action_cannot_be_swapped_in(
    client, register, manager, mailoutbox, receiver
):
    """The action is inside the signature: a forged token naming another action is not valid."""
    created = register()
    client.force_login(manager)
    approve = links(mailoutbox[0])["Approve"]
    token = parse_qs(urlsplit(approve).query)["token"][0]
    payload, timestamp, signature = token.split(":")
    content = json.loads(signing.b64_decode(payload.encode()))
    assert content["o"] == "approved"
    rejected = signing.b64_encode(json.dumps({**content, "o": "rejected"}).encode()).decode()
    forged = (
        approve.split("?")[0] + "?" + urlencode({"token": f"{rejected}:{timestamp}:{signature}"})
    )

    assert_refused(client, forged, 400, "This link is not valid", created, receiver)


def test_a_link_for_another_request_is_refused(client, register, manager, mailoutbox, receiver):
    first = register()
    second = register()
    client.force_login(manager)
    first_link = links(mailoutbox[0])["Approve"]
    moved = first_link.replace(first["id"], second["id"])

    assert_refused(client, moved, 400, "belongs to another request", second, receiver)
    assert_nothing_decided(first["id"], receiver)


def test_a_link_sent_to_someone_else_is_refused(
    client, register, manager, make_user, mailoutbox, receiver
):
    created = register()
    bea = make_user("bea")  # may decide it too, but this mail was sent to the manager
    client.force_login(bea)

    assert_refused(
        client,
        links(mail_to(mailoutbox, manager))["Approve"],
        403,
        "e-mailed to someone else, so it does not work while you are signed in as bea@example.com",
        created,
        receiver,
    )


def test_an_expired_requests_link_is_refused(client, register, manager, mailoutbox, receiver):
    created = register()
    ApprovalRequest.objects.filter(pk=created["id"]).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    client.force_login(manager)

    assert_refused(
        client,
        links(mailoutbox[0])["Approve"],
        410,
        "expired before anyone decided",
        created,
        receiver,
    )
    [expired] = AuditEvent.objects.filter(request_id=created["id"], kind=AuditEvent.Kind.EXPIRED)
    assert expired.payload["seen_by"] == "email link"


def test_a_link_stops_working_once_someone_else_decided(
    client, register, manager, make_user, mailoutbox, receiver
):
    bea = make_user("bea")
    created = register()
    client.force_login(manager)
    link = links(mail_to(mailoutbox, manager))["Approve"]
    assert client.get(link).status_code == 200  # the page is open when bea decides

    services.decide(created["id"], bea, "rejected", "No budget left")
    receiver.received.clear()

    for response in (client.post(link, {"comment": "Fine"}), client.get(link)):
        assert response.status_code == 410
        assert "already rejected by bea@example.com" in response.content.decode()
    decision = Decision.objects.get(request_id=created["id"])
    assert decision.decided_by == "bea@example.com"
    assert receiver.received == []


def test_a_link_stops_working_once_the_request_is_cancelled(
    client, register, manager, mailoutbox, receiver
):
    created = register()
    services.cancel(created["id"], "api-token")
    client.force_login(manager)

    assert_refused(
        client, links(mailoutbox[0])["Reject"], 410, "cancelled by the workflow", created, receiver
    )


def test_a_link_stops_working_for_someone_who_lost_the_permission(
    client, register, manager, approvers_group, mailoutbox, receiver
):
    created = register()
    manager.groups.remove(approvers_group)
    client.force_login(manager)

    assert_refused(
        client, links(mailoutbox[0])["Approve"], 403, "do not have permission", created, receiver
    )


# --- Signing in ----------------------------------------------------------------------------------


def test_someone_signed_out_signs_in_and_comes_back_to_the_link(
    client, register, manager, mailoutbox, receiver
):
    created = register()
    link = links(mailoutbox[0])["Approve"]

    response = client.get(link)

    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert target.path == "/accounts/login/"
    [next_url] = parse_qs(target.query)["next"]
    assert next_url == link
    assert client.post(link, {"comment": ""}).status_code == 302  # to sign in, nothing decided
    assert_nothing_decided(created["id"], receiver)

    signed_in = client.post(
        "/accounts/login/", {"username": "manager", "password": "pw-manager", "next": next_url}
    )

    assert signed_in.status_code == 302 and signed_in["Location"] == link
    assert "Yes, approve" in client.get(link).content.decode()


# --- A mail server that fails --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "error"),
    [
        ("RefusingBackend", "SMTPConnectError"),
        ("EchoingBackend", "SMTPDataError"),
    ],
)
def test_a_failing_mail_server_does_not_block_registration(
    client, registration_body, manager, make_user, settings, caplog, monkeypatch, backend, error
):
    make_user("bea")
    settings.EMAIL_BACKEND = f"{__name__}.{backend}"
    tokens = []
    make_token = mail_links.decision_token
    monkeypatch.setattr(
        mail_links,
        "decision_token",
        lambda *args: tokens.append(make_token(*args)) or tokens[-1],
    )

    response = client.post(
        "/api/approvals",
        registration_body(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )

    assert response.status_code == 201
    request_id = response.json()["id"]
    before = timezone.now()
    assert reminders.send_due_notices() == 1
    assert ApprovalRequest.objects.get(pk=request_id).status == Status.PENDING
    [failed] = AuditEvent.objects.filter(request_id=request_id, kind=AuditEvent.Kind.NOTIFY_FAILED)
    assert failed.actor == "system"
    assert sorted(failed.payload["recipients"]) == ["bea@example.com", "manager@example.com"]
    assert failed.payload["error"].startswith(error)
    assert not AuditEvent.objects.filter(request_id=request_id, kind=AuditEvent.Kind.NOTIFIED)
    [line] = [r for r in caplog.records if r.name == "approvals.notify.outbox"]
    assert line.levelname == "WARNING"
    assert line.json_fields["request_id"] == request_id
    assert line.json_fields["channel"] == "email"
    assert "Could not send the new notice of request" in line.getMessage()
    # An echoing server quotes the links back; they are kept out of the log and the audit log.
    if backend == "EchoingBackend":
        assert tokens and "[link]" in failed.payload["error"]
    for token in tokens:
        signature = token.rsplit(":", 1)[1]
        assert signature not in failed.payload["error"]
        assert signature not in caplog.text
    # Nobody got it, so each mail is due again a little later, not lost; the occasion is taken.
    assert failed.payload["retry"] is True
    due = Notice.objects.filter(request_id=request_id, state=Notice.State.DUE)
    assert sorted(due.values_list("email", flat=True)) == ["bea@example.com", "manager@example.com"]
    assert all(n.due_at >= before + outbox.RETRY_DELAY for n in due)
    assert outbox.send_due() == 0  # not before then
    assert reminders.send_due_notices() == 0


def test_a_notice_nobody_got_goes_out_once_the_mail_server_is_back(
    client, registration_body, manager, settings, mailoutbox
):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    response = client.post(
        "/api/approvals",
        registration_body(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    request_id = response.json()["id"]
    reminders.send_due_notices()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Notice.objects.filter(request_id=request_id).update(due_at=timezone.now())

    assert outbox.send_due() == 1

    [message] = mailoutbox
    assert message.to == ["manager@example.com"]
    assert message.subject.startswith("Approval needed")  # the first notice, not a reminder
    [sent] = AuditEvent.objects.filter(request_id=request_id, kind=AuditEvent.Kind.NOTIFIED)
    assert sent.payload["purpose"] == "new"
    assert sent.payload["channel"] == "email"
    [notice] = Notice.objects.filter(request_id=request_id)
    assert notice.state == Notice.State.SENT and notice.attempts == 2
    assert outbox.send_due() == 0  # sent once


def test_a_mail_refused_for_one_person_is_retried_for_that_person_only(
    client, registration_body, manager, make_user, settings, mailoutbox
):
    make_user("bea")
    settings.EMAIL_BACKEND = f"{__name__}.RefusingOneBackend"
    response = client.post(
        "/api/approvals",
        registration_body(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    request_id = response.json()["id"]
    reminders.send_due_notices()
    [failed] = AuditEvent.objects.filter(request_id=request_id, kind=AuditEvent.Kind.NOTIFY_FAILED)
    assert failed.payload["recipients"] == ["bea@example.com"]
    [sent] = AuditEvent.objects.filter(request_id=request_id, kind=AuditEvent.Kind.NOTIFIED)
    assert sent.payload["recipients"] == ["manager@example.com"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Notice.objects.filter(request_id=request_id, state=Notice.State.DUE).update(
        due_at=timezone.now()
    )

    assert outbox.send_due() == 1

    assert [m.to for m in mailoutbox] == [["bea@example.com"]]


def test_a_mail_still_failing_a_day_later_is_given_up(client, registration_body, manager, settings):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    response = client.post(
        "/api/approvals",
        registration_body(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    request_id = response.json()["id"]
    reminders.send_due_notices()
    now = timezone.now()
    Notice.objects.filter(request_id=request_id).update(
        due_at=now, created_at=now - outbox.GIVE_UP_AFTER
    )

    assert outbox.send_due() == 1

    [notice] = Notice.objects.filter(request_id=request_id)
    assert notice.state == Notice.State.FAILED and notice.due_at is None
    last = AuditEvent.objects.filter(request_id=request_id, kind=AuditEvent.Kind.NOTIFY_FAILED)
    assert last.last().payload["retry"] is False


def test_a_notice_to_deciders_of_a_request_decided_meanwhile_is_dropped(
    client, registration_body, manager, settings, mailoutbox
):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    response = client.post(
        "/api/approvals",
        registration_body(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    request_id = response.json()["id"]
    reminders.send_due_notices()
    services.decide(request_id, manager, "approved", "")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Notice.objects.filter(request_id=request_id, purpose="new").update(due_at=timezone.now())

    outbox.send_due()

    assert not [m for m in mailoutbox if m.subject.startswith("Approval needed")]
    [notice] = Notice.objects.filter(request_id=request_id, purpose="new")
    assert notice.state == Notice.State.DROPPED


def test_a_retried_notice_skips_whoever_had_their_say_meanwhile(
    client, registration_body, manager, make_user, settings, mailoutbox
):
    make_user("bea")
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    response = client.post(
        "/api/approvals",
        registration_body(required_approvals=2),
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    request_id = response.json()["id"]
    reminders.send_due_notices()
    services.decide(request_id, manager, "approved", "")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Notice.objects.filter(request_id=request_id).update(due_at=timezone.now())

    outbox.send_due()

    assert [m.to for m in mailoutbox] == [["bea@example.com"]]
    dropped = Notice.objects.get(request_id=request_id, email="manager@example.com")
    assert dropped.state == Notice.State.DROPPED
    assert "approved" in dropped.last_error


def test_decision_links_never_reach_the_logs(
    client, register, manager, make_user, mailoutbox, caplog, receiver
):
    caplog.set_level("DEBUG")
    created = register()
    found = links(mailoutbox[0])
    tokens = [parse_qs(urlsplit(path).query)["token"][0] for path in found.values()]
    client.force_login(make_user("bea"))
    client.get(found["Approve"])  # 403: someone else
    client.force_login(manager)
    client.get(found["Approve"][:-2])  # 400: cut short
    client.post(found["Reject"], {"comment": ""})  # 400: no comment
    client.post(found["Approve"], {"comment": "ok"})
    client.get(found["Approve"])  # 410: decided

    assert ApprovalRequest.objects.get(pk=created["id"]).status == Status.APPROVED
    assert "Forbidden" in caplog.text and "Bad Request" in caplog.text  # Django's request log
    for token in tokens:
        signature = token.rsplit(":", 1)[1]
        assert signature not in caplog.text
