"""The auditor's view in the Django admin: everything visible, nothing writable."""

import pytest

from approvals import services
from approvals.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor(admin_user, client):
    admin_user.email = "auditor@example.com"
    admin_user.save()
    client.force_login(admin_user)
    return admin_user


def test_requests_are_listed_with_status_decider_and_delivery(client, auditor, register, manager):
    decided = register(title="Decided report")
    register(title="Waiting report")
    services.decide(decided["id"], manager, "approved", "ok")

    page = client.get("/admin/approvals/approvalrequest/")

    html = page.content.decode()
    assert page.status_code == 200
    assert "Decided report" in html and "Waiting report" in html
    assert "manager@example.com" in html
    assert "Approved" in html and "Pending" in html


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("q=EXP-7", "Lisbon trip", "Laptop charger"),
        ("q=manager%40example.com", "Lisbon trip", "Laptop charger"),
        ("q=bob", "Laptop charger", "Lisbon trip"),
        ("status=approved", "Lisbon trip", "Laptop charger"),
        ("status=pending", "Laptop charger", "Lisbon trip"),
        ("delivery_status=none", "Laptop charger", "Lisbon trip"),
    ],
)
def test_auditors_search_and_filter(client, auditor, register, manager, query, shown, hidden):
    lisbon = register(title="Lisbon trip", external_id="EXP-7")
    register(title="Laptop charger", requester_email="bob@example.com")
    services.decide(lisbon["id"], manager, "approved", "")

    html = client.get(f"/admin/approvals/approvalrequest/?{query}").content.decode()

    assert shown in html and hidden not in html


def test_the_status_filter_shows_expired_requests_at_once(client, auditor, register):
    import datetime

    from django.utils import timezone

    from approvals.models import ApprovalRequest

    created = register(title="Old report")
    ApprovalRequest.objects.filter(pk=created["id"]).update(
        expires_at=timezone.now() - datetime.timedelta(minutes=1)
    )

    assert (
        "Old report"
        in client.get("/admin/approvals/approvalrequest/?status=expired").content.decode()
    )
    assert (
        "Old report"
        not in client.get("/admin/approvals/approvalrequest/?status=pending").content.decode()
    )


def test_a_request_page_shows_its_decisions_and_audit_trail_read_only(
    client, auditor, register, manager
):
    created = register()
    services.decide(created["id"], manager, "rejected", "Too expensive")

    page = client.get(f"/admin/approvals/approvalrequest/{created['id']}/change/")

    html = page.content.decode()
    assert page.status_code == 200
    assert "Too expensive" in html and "Registered" in html
    assert 'name="_save"' not in html  # nothing to save: requests change only through the app


def test_audit_events_cannot_be_added_changed_or_deleted(client, auditor, register):
    created = register()
    event = AuditEvent.objects.get(request_id=created["id"])
    base = "/admin/approvals/auditevent/"

    assert client.get(base).status_code == 200
    assert client.get(base + "add/").status_code == 403
    assert client.post(base + f"{event.pk}/change/", {"actor": "someone else"}).status_code == 403
    assert client.post(base + f"{event.pk}/delete/", {"post": "yes"}).status_code == 403
    response = client.post(
        base, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}
    )
    assert AuditEvent.objects.filter(pk=event.pk, actor=event.actor).exists()
    assert response.status_code in (200, 302)


def test_audit_events_are_append_only_in_the_model(register):
    created = register()
    event = AuditEvent.objects.get(request_id=created["id"])
    event.actor = "tampered"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()
    assert AuditEvent.objects.get(pk=event.pk).actor != "tampered"


@pytest.mark.django_db(transaction=True)
def test_retry_callback_now_resends_failed_and_gone_callbacks(
    client, auditor, register, manager, receiver
):
    from urllib.parse import urlsplit

    from approvals.models import ApprovalRequest, DeliveryStatus

    gone = register(title="Gone report")
    waiting = register(title="Waiting report")
    path = urlsplit(ApprovalRequest.objects.get(pk=gone["id"]).callback_url).path
    receiver.answers[path] = [404]
    services.decide(gone["id"], manager, "approved", "")
    assert ApprovalRequest.objects.get(pk=gone["id"]).delivery_status == DeliveryStatus.GONE

    response = client.post(
        "/admin/approvals/approvalrequest/",
        {"action": "retry_callback_now", "_selected_action": [gone["id"], waiting["id"]]},
        follow=True,
    )

    messages = " ".join(str(m) for m in response.context["messages"])
    assert "Retried 1 callback(s): 1 delivered now" in messages
    assert "Not retried" in messages and "Waiting report" in messages
    approval = ApprovalRequest.objects.get(pk=gone["id"])
    assert approval.delivery_status == DeliveryStatus.DELIVERED
    retry = approval.audit_events.get(kind=AuditEvent.Kind.CALLBACK_RETRY)
    assert retry.actor == "auditor@example.com"
    assert retry.payload == {"previous_delivery_status": "gone"}
    assert len(receiver.received) == 1


def test_retry_callback_now_needs_its_permission(client, make_user, register):
    staff = make_user("viewer", approver=False, is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    client.force_login(staff)

    page = client.get("/admin/approvals/approvalrequest/")

    assert page.status_code == 200
    assert "retry_callback_now" not in page.content.decode()


def test_staff_without_the_audit_permission_sees_no_requests(client, make_user):
    client.force_login(make_user("helpdesk", approver=False, is_staff=True))
    assert client.get("/admin/approvals/approvalrequest/").status_code == 403
    assert client.get("/admin/approvals/auditevent/").status_code == 403


def test_an_auditor_reads_any_request_but_cannot_decide(client, make_user, register):
    from django.contrib.auth.models import Permission

    created = register(assignees=["someone@example.com"])
    auditor = make_user("reader", approver=False, is_staff=True)
    auditor.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    client.force_login(auditor)

    assert client.get("/admin/approvals/approvalrequest/").status_code == 200
    page = client.get(f"/approvals/{created['id']}/").content.decode()
    assert "Team offsite" in page and 'value="approved"' not in page
    response = client.post(
        f"/approvals/{created['id']}/decide", {"outcome": "approved", "confirmed": "on"}
    )
    assert response.status_code == 409
