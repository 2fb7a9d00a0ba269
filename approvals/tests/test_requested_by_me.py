"""The inbox's "Requested by me": a person's own requests, open and closed, and where each one
stands (status, decisions so far, the callback's delivery), paginated like the other tabs."""

import pytest
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalRequest
from approvals.tests.conftest import decide_page
from approvals.web import inbox

pytestmark = pytest.mark.django_db(transaction=True)


def titles(response):
    return [row.title for row in response.context["page"].rows]


@pytest.fixture
def alice(make_user):
    """A requester with an account, not an approver: the tab is for everyone signed in."""
    return make_user("alice", email="Alice@Example.com", approver=False)


def test_the_tab_lists_the_persons_own_requests_in_every_state(
    client, register, alice, manager, make_user
):
    bea, carl = make_user("bea"), make_user("carl")
    register(title="Open one", assignees=["manager@example.com"])
    two = register(
        title="Half approved",
        assignees=["bea@example.com", "carl@example.com"],
        required_approvals=2,
    )
    rejected = register(title="Rejected one", assignees=["manager@example.com"])
    register(title="Someone else's", requester_email="bob@example.com")
    # Another spelling of alice's mailbox is still alice (`emails.person`).
    register(title="Tagged", requester_email="alice+travel@example.com")
    decide_page(client, bea, two["id"], comment="Fine by me")
    decide_page(client, manager, rejected["id"], outcome="rejected", comment="Over budget")
    client.force_login(alice)

    response = client.get("/?tab=mine")

    assert response.status_code == 200
    assert titles(response) == ["Open one", "Half approved", "Rejected one", "Tagged"]
    html = response.content.decode()
    assert '>Requested by me <span class="count">4</span>' in html
    assert "Where it stands" in html
    assert "1 of 2 approvals" in html
    assert "Approved by bea@example.com" in html
    assert "Rejected by manager@example.com" in html
    assert "Workflow: delivered" in html  # the rejection's callback went out
    assert "Someone else&#x27;s" not in html and "Someone else's" not in html
    assert carl  # named, but has not decided: not in the row
    assert "by carl@example.com" not in html


def test_each_request_in_the_tab_opens_for_its_requester(client, register, alice):
    created = register(title="My laptop")
    client.force_login(alice)

    html = client.get("/?tab=mine").content.decode()
    assert f'href="/approvals/{created["id"]}/"' in html
    assert client.get(f"/approvals/{created['id']}/").status_code == 200


def test_the_tab_filters_by_status_and_search(client, register, alice, manager):
    register(title="Laptop", assignees=["manager@example.com"])
    cancelled = register(title="Books")
    ApprovalRequest.objects.filter(pk=cancelled["id"]).update(
        status="cancelled", closed_at=timezone.now()
    )
    client.force_login(alice)

    assert titles(client.get("/?tab=mine&status=cancelled")) == ["Books"]
    assert titles(client.get("/?tab=mine&status=pending")) == ["Laptop"]
    assert titles(client.get("/?tab=mine&q=lap")) == ["Laptop"]


def test_the_tab_is_paginated_like_the_others(client, register, alice):
    for number in range(inbox.PAGE_SIZE + 2):
        register(title=f"Request {number:02d}")
    client.force_login(alice)

    first = client.get("/?tab=mine")
    second = client.get("/?tab=mine&page=2")

    assert len(titles(first)) == inbox.PAGE_SIZE and first.context["page"].has_next
    assert titles(second) == ["Request 25", "Request 26"]
    assert 'href="?tab=mine&amp;page=2"' in first.content.decode()


def test_someone_who_asked_for_nothing_sees_an_empty_tab(client, register, manager):
    register(title="Alice's")
    client.force_login(manager)

    response = client.get("/?tab=mine")

    assert titles(response) == []
    assert "You have not asked for anything yet." in response.content.decode()


def test_an_account_without_a_mailbox_has_no_requests(client, register, make_user):
    register(title="Alice's")
    client.force_login(make_user("nomail", email="", approver=False))

    assert titles(client.get("/?tab=mine")) == []


def test_an_expired_request_shows_expired_before_the_sweep(client, register, alice):
    created = register(title="Too late")
    ApprovalRequest.objects.filter(pk=created["id"]).update(expires_at=timezone.now())
    client.force_login(alice)

    html = client.get("/?tab=mine").content.decode()

    assert 'class="badge status-expired">Expired<' in html
    assert services.expire_overdue() == 1  # the tab only showed it; nothing was recorded
