"""Reassigning: handing a request to another approver from its page, the request administrators
who may hand on any open request, the refusals at the field, the new person's e-mail and the
history (contract: "Richer decisions", README: "People and pages")."""

import datetime
import io

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.utils import timezone

from approvals import permissions, services
from approvals.identity import tokens
from approvals.models import ApprovalRequest, Assignee, AuditEvent, Delegation
from approvals.tests.conftest import decide_page, waiting_ids

# Real transactions: callbacks and e-mails leave once their transaction commits.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people(make_user):
    """Approvers anna, ben and carl; nora, who may not decide; requests come from alice."""
    made = {name: make_user(name) for name in ("anna", "ben", "carl", "alice")}
    made["nora"] = make_user("nora", approver=False)
    return made


@pytest.fixture
def request_admin(make_user):
    """A member of "Request administrators" (migration 0019), who may not decide themselves.
    A transactional test run earlier may have flushed the group, hence get_or_create."""
    group, _ = Group.objects.get_or_create(name="Request administrators")
    group.permissions.add(
        Permission.objects.get(
            codename="reassign_approvalrequest", content_type__app_label="approvals"
        )
    )
    admin = make_user("rita", approver=False)
    admin.groups.add(group)
    return admin


def hand_on(client, user, request_id, to, note=""):
    """`user` hands the request to `to` through its page's form."""
    client.force_login(user)
    return client.post(
        f"/approvals/{request_id}/reassign", {"reassign-to": to, "reassign-note": note}
    )


def field_error(response) -> str:
    return " ".join(response.context["reassign_form"].errors["to"])


def may_decide(client, people, request_id) -> set[str]:
    """Who finds the request in their inbox, among `people`."""
    return {name for name, user in people.items() if request_id in waiting_ids(client, user)}


def test_a_named_approver_hands_it_on_and_the_new_person_decides_in_their_place(
    client, people, register, receiver
):
    created = register(assignees=["anna@example.com"])
    request_id = created["id"]
    client.force_login(people["anna"])
    page = client.get(f"/approvals/{request_id}/").content.decode()
    assert 'for="id_reassign-to">Reassign to</label>' in page
    assert ">Reassign</button>" in page

    response = hand_on(client, people["anna"], request_id, "Ben@Example.com", "On holiday")

    assert response.status_code == 302
    assert may_decide(client, people, request_id) == {"ben"}
    assert decide_page(client, people["anna"], request_id).status_code == 409
    client.force_login(people["anna"])  # she still sees it, and why she may not decide
    page = client.get(f"/approvals/{request_id}/").content.decode()
    assert "You handed this request on to someone else" in page
    history = "<strong>Reassigned</strong> by anna@example.com to ben@example.com: “On holiday”"
    assert history in page
    [event] = AuditEvent.objects.filter(request_id=request_id, kind="reassigned")
    assert event.actor == "anna@example.com"
    assert event.payload == {
        "from": "anna@example.com",
        "to": "ben@example.com",
        "note": "On holiday",
    }

    assert decide_page(client, people["ben"], request_id, "approved").status_code == 302
    [callback] = receiver.received
    assert callback.body["decided_by"] == "ben@example.com"


def test_the_new_person_may_hand_it_on_again_and_back(client, people, register):
    request_id = register(assignees=["anna@example.com"])["id"]

    assert hand_on(client, people["anna"], request_id, "ben@example.com").status_code == 302
    assert hand_on(client, people["ben"], request_id, "carl@example.com").status_code == 302
    assert may_decide(client, people, request_id) == {"carl"}
    assert hand_on(client, people["carl"], request_id, "anna@example.com").status_code == 302

    assert may_decide(client, people, request_id) == {"anna"}
    approval = ApprovalRequest.objects.get(pk=request_id)
    assert approval.named(Assignee.Role.ASSIGNEE) == ["anna@example.com"]


def test_a_request_that_named_nobody_gets_the_new_person_as_its_one_decider(
    client, people, register
):
    request_id = register()["id"]
    assert may_decide(client, people, request_id) == {"anna", "ben", "carl"}

    assert hand_on(client, people["carl"], request_id, "ben@example.com").status_code == 302

    assert may_decide(client, people, request_id) == {"ben"}
    approval = ApprovalRequest.objects.prefetch_related("assignees").get(pk=request_id)
    assert [d.user.username for d in permissions.deciders(approval)] == ["ben"]


def test_a_group_member_hands_it_on_and_the_new_person_takes_the_groups_place(
    client, people, finance, register
):
    request_id = register(assignee_groups=["finance"])["id"]
    everyone = {**people, **{u.username: u for u in finance.user_set.all()}}
    assert may_decide(client, everyone, request_id) == {"fiona", "felix"}

    assert hand_on(client, everyone["fiona"], request_id, "anna@example.com").status_code == 302

    assert may_decide(client, everyone, request_id) == {"anna"}


def test_handing_on_one_of_two_named_keeps_the_other(client, people, register):
    request_id = register(assignees=["anna@example.com", "ben@example.com"])["id"]

    assert hand_on(client, people["anna"], request_id, "carl@example.com").status_code == 302

    assert may_decide(client, people, request_id) == {"ben", "carl"}


@pytest.mark.parametrize(
    ("who", "to", "status", "message"),
    [
        ("anna", "nobody@example.com", 400, "Nobody with an active account has the e-mail"),
        ("anna", "nora@example.com", 400, "may not decide approval requests"),
        ("anna", "alice@example.com", 400, "asked for this approval"),
        ("anna", "Anna@Example.com", 400, "That is you"),
        ("anna", "not an address", 400, "Enter the e-mail address"),
        ("anna", "", 400, "Enter the e-mail address"),
        ("ben", "carl@example.com", 403, "You handed this request on"),
    ],
)
def test_refusals_are_shown_at_the_field_and_change_nothing(
    client, people, register, who, to, status, message
):
    request_id = register(assignees=["anna@example.com"])["id"]
    if who == "ben":
        # ben still sees it, having had it and handed it back; it is no longer his.
        hand_on(client, people["anna"], request_id, "ben@example.com")
        hand_on(client, people["ben"], request_id, "anna@example.com")
    before = list(Assignee.objects.filter(request_id=request_id).values())

    response = hand_on(client, people[who], request_id, to)

    assert response.status_code == status
    assert message in field_error(response)
    assert 'id="id_reassign-to_error"' in response.content.decode()
    assert list(Assignee.objects.filter(request_id=request_id).values()) == before


def test_a_closed_request_cannot_be_handed_on(client, people, register):
    request_id = register(assignees=["anna@example.com", "ben@example.com"])["id"]
    services.decide(request_id, people["ben"], "approved", "")

    response = hand_on(client, people["anna"], request_id, "carl@example.com")

    assert response.status_code == 409
    assert "already approved by ben@example.com" in field_error(response)


def test_someone_who_already_had_their_say_cannot_be_handed_it(client, people, register):
    request_id = register(assignees=["anna@example.com", "ben@example.com"], required_approvals=2)[
        "id"
    ]
    services.decide(request_id, people["ben"], "approved", "")

    response = hand_on(client, people["anna"], request_id, "ben@example.com")

    assert response.status_code == 400
    assert "already had their say" in field_error(response)


def test_an_auditor_who_sees_it_but_may_not_decide_is_refused_at_the_field(
    client, people, auditor, register
):
    request_id = register(assignees=["anna@example.com"])["id"]
    client.force_login(auditor)
    assert ">Reassign</button>" not in client.get(f"/approvals/{request_id}/").content.decode()

    response = hand_on(client, auditor, request_id, "ben@example.com")

    assert response.status_code == 403
    assert "You do not have permission to decide" in field_error(response)


def test_a_person_who_may_not_see_it_gets_a_404(client, people, register):
    request_id = register(assignees=["anna@example.com"])["id"]

    assert hand_on(client, people["nora"], request_id, "ben@example.com").status_code == 404


def test_a_delegate_may_decide_but_not_hand_on_their_delegators_place(client, people, register):
    now = timezone.now()
    Delegation.objects.create(
        delegator=people["anna"],
        delegate=people["carl"],
        starts_at=now - datetime.timedelta(days=1),
        ends_at=now + datetime.timedelta(days=1),
    )
    request_id = register(assignees=["anna@example.com"])["id"]

    response = hand_on(client, people["carl"], request_id, "ben@example.com")

    assert response.status_code == 403
    assert "only they can hand it on" in field_error(response)


def test_a_request_administrator_hands_on_any_open_request(client, people, request_admin, register):
    request_id = register(assignees=["anna@example.com"])["id"]
    client.force_login(request_admin)
    page = client.get(f"/approvals/{request_id}/")
    assert page.status_code == 200  # an administrator sees what they may hand on
    assert ">Reassign</button>" in page.content.decode()

    response = hand_on(client, request_admin, request_id, "carl@example.com", "Anna left")

    assert response.status_code == 302
    assert may_decide(client, people, request_id) == {"anna", "carl"}
    [event] = AuditEvent.objects.filter(request_id=request_id, kind="reassigned")
    assert event.payload["as"] == "request administrator"
    assert event.actor == "rita@example.com"


def test_a_request_administrator_may_not_hand_on_their_own_request(
    client, people, request_admin, register
):
    request_id = register(requester_email="rita@example.com")["id"]

    response = hand_on(client, request_admin, request_id, "carl@example.com")

    assert response.status_code == 403
    assert "You asked for this approval" in field_error(response)


def test_the_new_person_is_e_mailed_once_by_send_notifications(
    client, people, register, mailoutbox
):
    request_id = register(assignees=["anna@example.com"])["id"]
    call_command("send_notifications", stdout=io.StringIO())
    mailoutbox.clear()

    hand_on(client, people["anna"], request_id, "ben@example.com", "Please take over")
    assert mailoutbox == []  # never inside the request: the outbox's pass sends it
    out = io.StringIO()
    call_command("send_notifications", stdout=out)

    [message] = mailoutbox
    assert message.to == ["ben@example.com"]
    assert message.subject.startswith("Handed to you: Team offsite")
    assert "anna@example.com handed this request to you" in message.body
    assert "Their note: Please take over" in message.body
    assert "Told 1 person(s) of a request handed to them." in out.getvalue()
    notified = AuditEvent.objects.filter(request_id=request_id, kind="notified").last()
    assert notified.payload == {
        "recipients": ["ben@example.com"],
        "purpose": "reassigned",
        "channel": "email",
    }
    call_command("send_notifications", stdout=io.StringIO())
    assert len(mailoutbox) == 1


def test_the_api_follows_a_reassignment(client, people, register):
    request_id = register(assignees=["anna@example.com"])["id"]
    anna = tokens.issue(people["anna"], "script").secret
    ben = tokens.issue(people["ben"], "script").secret
    hand_on(client, people["anna"], request_id, "ben@example.com")
    client.logout()

    def awaiting(secret):
        answer = client.get("/api/approvals?awaiting=me", headers=bearer(secret))
        return [state["id"] for state in answer.json()["results"]]

    assert awaiting(anna) == []
    assert awaiting(ben) == [request_id]

    def approve(secret):
        return client.post(
            f"/api/approvals/{request_id}/decision",
            {"decision": "approved", "comment": ""},
            content_type="application/json",
            headers=bearer(secret),
        )

    assert approve(anna).status_code == 403
    assert approve(ben).status_code == 200


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def test_a_reassignment_that_would_strand_a_request_needing_two_approvals_is_refused(
    client, people, register
):
    request_id = register(required_approvals=2)["id"]  # names nobody: anna, ben, carl may
    before = list(Assignee.objects.filter(request_id=request_id).values())

    response = hand_on(client, people["anna"], request_id, "ben@example.com")

    assert response.status_code == 400
    assert "would leave 1 person(s) who could approve it" in field_error(response)
    assert list(Assignee.objects.filter(request_id=request_id).values()) == before
    assert not AuditEvent.objects.filter(request_id=request_id, kind="reassigned").exists()
