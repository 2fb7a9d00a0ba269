"""Who may decide, and what a decision does: the rules of the contract's "People" section."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.utils import timezone

from approvals import permissions, services
from approvals.models import ApprovalRequest, AuditEvent, Decision, DeliveryStatus, Status
from approvals.tests.conftest import decide_page

# Real transactions: callbacks are sent after the decision commits (transaction.on_commit).
pytestmark = pytest.mark.django_db(transaction=True)


def test_an_approver_approves_through_the_page_and_the_workflow_is_told(
    client, register, manager, receiver
):
    created = register()

    response = decide_page(client, manager, created["id"], "approved", "Fine by me")

    assert response.status_code == 302 and response["Location"] == "/"
    request = ApprovalRequest.objects.get(pk=created["id"])
    assert request.status == Status.APPROVED
    decision = request.decisions.get()
    assert (decision.outcome, decision.decided_by, decision.comment) == (
        "approved",
        "manager@example.com",
        "Fine by me",
    )
    assert [e.kind for e in request.audit_events.all()] == [
        AuditEvent.Kind.REGISTERED,
        AuditEvent.Kind.APPROVED,
        AuditEvent.Kind.CALLBACK_SENT,
    ]
    assert request.delivery_status == DeliveryStatus.DELIVERED
    assert len(receiver.received) == 1
    followed = client.get("/")
    texts = [str(m) for m in followed.context["messages"]]
    assert any("You approved" in t for t in texts)
    assert any("workflow has received" in t for t in texts)


def test_a_decision_whose_callback_the_job_took_first_says_it_is_being_sent(
    client, register, manager, receiver, monkeypatch
):
    """A delivery pass can claim the callback between the decision's commit and the page's own
    first attempt; the page then says it is on its way, not "could not be told yet ()"."""
    from approvals import delivery

    created = register()
    monkeypatch.setattr(delivery, "claim_due", lambda request_id: None)

    decide_page(client, manager, created["id"], "approved", "Fine by me")

    texts = [str(m) for m in client.get("/").context["messages"]]
    assert "Your decision is stored and is being sent to the workflow." in texts
    assert not any("could not be told" in t for t in texts)


def test_a_rejection_needs_a_comment(client, register, manager, receiver):
    created = register()

    response = decide_page(client, manager, created["id"], "rejected", "   ")

    assert response.status_code == 400
    assert "comment is required" in response.content.decode()
    assert ApprovalRequest.objects.get(pk=created["id"]).status == Status.PENDING
    assert not Decision.objects.exists()
    assert receiver.received == []
    with pytest.raises(services.DecisionRefused, match="comment is required"):
        services.decide(created["id"], manager, "rejected", "")


def test_a_rejection_with_a_comment_is_sent_to_the_workflow(client, register, manager, receiver):
    created = register()
    decide_page(client, manager, created["id"], "rejected", "Over budget")
    assert receiver.received[0].body["decision"] == "rejected"
    assert receiver.received[0].body["comment"] == "Over budget"


def test_the_requester_never_decides_their_own_request(client, register, make_user, receiver):
    created = register(requester_email="Alice@Example.com")
    alice = make_user("alice", email="ALICE@example.COM", is_superuser=True)

    response = decide_page(client, alice, created["id"], "approved")

    assert response.status_code == 409
    assert "cannot decide it yourself" in response.content.decode()
    assert not Decision.objects.exists() and receiver.received == []
    assert created["id"] not in [str(r.pk) for r in permissions.requests_awaiting(alice)]


def test_a_person_without_the_decide_permission_is_refused(client, register, make_user):
    created = register()
    clerk = make_user("clerk", approver=False)

    response = decide_page(client, clerk, created["id"], "approved")

    assert response.status_code == 404  # not an approver, not the requester: not theirs to see
    assert not Decision.objects.exists()
    assert list(permissions.requests_awaiting(clerk)) == []


def test_a_directly_granted_permission_counts_like_the_group(register, make_user):
    created = register()
    direct = make_user("direct", approver=False)
    direct.user_permissions.add(Permission.objects.get(codename="decide_approvalrequest"))
    direct = type(direct).objects.get(pk=direct.pk)  # fresh permission cache
    services.decide(created["id"], direct, "approved", "")
    assert ApprovalRequest.objects.get(pk=created["id"]).status == Status.APPROVED


def test_only_assignees_may_decide_a_request_that_names_them(client, register, make_user):
    created = register(assignees=["Boss@Example.com"])
    other = make_user("other")
    boss = make_user("boss")

    assert decide_page(client, other, created["id"], "approved").status_code == 404
    assert created["id"] not in [str(r.pk) for r in permissions.requests_awaiting(other)]
    assert [str(r.pk) for r in permissions.requests_awaiting(boss)] == [created["id"]]
    assert decide_page(client, boss, created["id"], "approved").status_code == 302


def test_an_account_without_an_email_cannot_decide(register, make_user):
    created = register()
    nameless = make_user("nameless", email="")
    with pytest.raises(services.DecisionRefused, match="no e-mail"):
        services.decide(created["id"], nameless, "approved", "")


def test_a_second_decision_is_refused_with_who_was_first(
    client, register, manager, make_user, receiver
):
    created = register()
    services.decide(created["id"], manager, "approved", "ok")
    second = make_user("second")

    response = decide_page(client, second, created["id"], "rejected", "no")

    assert response.status_code == 409
    assert "already approved by manager@example.com" in response.content.decode()
    assert Decision.objects.count() == 1
    assert len(receiver.received) == 1


def test_the_same_person_cannot_decide_twice(register, manager):
    created = register()
    services.decide(created["id"], manager, "approved", "")
    with pytest.raises(services.DecisionRefused, match="already approved"):
        services.decide(created["id"], manager, "approved", "")
    assert Decision.objects.count() == 1


def test_an_expired_request_cannot_be_decided_and_shows_as_expired(client, register, manager):
    created = register()
    ApprovalRequest.objects.filter(pk=created["id"]).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )

    response = decide_page(client, manager, created["id"], "approved")

    assert response.status_code == 409
    assert "expired" in response.content.decode()
    request = ApprovalRequest.objects.get(pk=created["id"])
    assert request.effective_status == Status.EXPIRED
    assert list(permissions.requests_awaiting(manager)) == []


def test_a_cancelled_request_is_read_only(client, register, manager):
    created = register()
    services.cancel(created["id"], "api-token")
    client.force_login(manager)

    page = client.get(f"/approvals/{created['id']}/").content.decode()

    assert "cancelled by the workflow" in page
    assert 'value="approved"' not in page


def test_the_inbox_lists_what_the_person_may_decide_oldest_first(client, register, manager):
    first = register(title="First report")
    second = register(title="Second report")
    register(title="Manager's own", requester_email="manager@example.com")
    register(title="For someone else", assignees=["other@example.com"])
    client.force_login(manager)

    page = client.get("/")

    titles = [r.title for r in page.context["page"].rows]
    assert titles == ["First report", "Second report"]
    html = page.content.decode()
    assert f"/approvals/{first['id']}/" in html and f"/approvals/{second['id']}/" in html
    assert "120.50 EUR" in html


def test_the_inbox_and_pages_need_a_signed_in_person(client, register):
    created = register()
    assert client.get("/")["Location"].startswith("/accounts/login/")
    assert client.get(f"/approvals/{created['id']}/")["Location"].startswith("/accounts/login/")
    response = client.post(
        f"/approvals/{created['id']}/decide", {"outcome": "approved", "confirmed": "on"}
    )
    assert response.status_code == 302
    assert not Decision.objects.exists()


def test_the_request_page_shows_the_details_escaped_as_a_table(client, register, manager):
    created = register(
        description="Two nights",
        details={
            "cost_center": "<script>alert(1)</script>",
            "receipt": "https://example.com/r.pdf",
            "sneaky": "javascript:alert(1)",
            "lines": [{"item": "Hotel", "amount": "100.00"}],
        },
    )
    client.force_login(manager)

    html = client.get(f"/approvals/{created['id']}/").content.decode()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert '<a href="https://example.com/r.pdf"' in html
    assert 'href="javascript:' not in html
    assert '<th scope="row">cost_center</th>' in html
    assert "alice@example.com" in html and "120.50 EUR" in html
    for label in ("Comment", "Approve", "Reject"):
        assert label in html


def test_an_unknown_outcome_is_a_400_not_a_500(client, register, manager):
    created = register()
    response = decide_page(client, manager, created["id"], "maybe", "hmm")
    assert response.status_code == 400
    assert not Decision.objects.exists()


def test_decisions_need_the_csrf_token(register, manager):
    from django.test import Client

    created = register()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(manager)
    response = strict.post(
        f"/approvals/{created['id']}/decide", {"outcome": "approved", "confirmed": "on"}
    )
    assert response.status_code == 403
    assert not Decision.objects.exists()


def test_the_migrations_create_the_approvers_and_auditors_groups(django_user_model):
    from django.contrib.auth.models import Group

    call_command("migrate", "approvals", "0001", verbosity=0)  # earlier tests may have flushed it
    assert not Group.objects.filter(name__in=["Approvers", "Auditors"]).exists()
    call_command("migrate", "approvals", verbosity=0)

    auditor = django_user_model.objects.create_user(
        "audit", "audit@example.com", "pw", is_staff=True
    )
    auditor.groups.add(Group.objects.get(name="Auditors"))
    auditor = django_user_model.objects.get(pk=auditor.pk)
    assert auditor.has_perm("approvals.view_auditevent")
    assert not auditor.has_perm("approvals.decide_approvalrequest")
    assert not auditor.has_perm("approvals.change_approvalrequest")

    group = Group.objects.get(name="Approvers")
    person = django_user_model.objects.create_user("fresh", "fresh@example.com", "pw")
    person.groups.add(group)
    assert django_user_model.objects.get(pk=person.pk).has_perm("approvals.decide_approvalrequest")


def test_error_pages_are_the_apps_own(client, manager):
    client.force_login(manager)
    response = client.get("/approvals/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert "Back to the inbox" in response.content.decode()
