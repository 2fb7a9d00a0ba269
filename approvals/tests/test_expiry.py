"""Expiry: shown at once everywhere, never decidable, recorded once when first seen or swept."""

import datetime

import pytest
from django.core.management import call_command
from django.utils import timezone

from approvals import permissions, services
from approvals.models import ApprovalRequest, AuditEvent, Status
from approvals.tests.conftest import API_TOKEN

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def overdue(register):
    created = register(title="Overdue report")
    ApprovalRequest.objects.filter(pk=created["id"]).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    return created


def expired_events(created):
    return AuditEvent.objects.filter(request_id=created["id"], kind=AuditEvent.Kind.EXPIRED)


def api_get(client, created):
    return client.get(
        f"/api/approvals/{created['id']}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    ).json()


def test_the_api_shows_expired_at_once_and_records_it_once(client, overdue):
    assert api_get(client, overdue)["status"] == "expired"
    assert api_get(client, overdue)["status"] == "expired"

    assert ApprovalRequest.objects.get(pk=overdue["id"]).status == Status.EXPIRED
    [event] = expired_events(overdue)
    assert (event.actor, event.payload["seen_by"]) == ("system", "api")


def test_the_page_shows_expired_and_offers_no_decision(client, overdue, manager):
    client.force_login(manager)
    html = client.get(f"/approvals/{overdue['id']}/").content.decode()
    assert "expired before anyone decided it" in html
    assert 'value="approved"' not in html
    assert expired_events(overdue).get().payload["seen_by"] == "page"


def test_the_inbox_leaves_expired_requests_out_without_a_sweep(client, overdue, manager):
    assert list(permissions.requests_awaiting(manager)) == []
    client.force_login(manager)
    assert "Overdue report" not in client.get("/").content.decode()


def test_the_periodic_pass_sweeps_expired_requests(overdue, register):
    still_open = register(title="Fresh report")

    call_command("deliver_callbacks", verbosity=0)
    call_command("deliver_callbacks", verbosity=0)

    assert ApprovalRequest.objects.get(pk=overdue["id"]).status == Status.EXPIRED
    assert expired_events(overdue).get().payload["seen_by"] == "sweep"
    assert ApprovalRequest.objects.get(pk=still_open["id"]).status == Status.PENDING


def test_an_expired_request_cannot_be_decided(overdue, manager, receiver):
    with pytest.raises(services.DecisionRefused, match="expired"):
        services.decide(overdue["id"], manager, "approved", "")
    assert receiver.received == []


def test_cancelling_an_expired_request_answers_its_state(client, overdue):
    services.expire(overdue["id"])
    response = client.post(
        f"/api/approvals/{overdue['id']}/cancel", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "expired"
