"""The manager's day: tabs, search, filters, sorting, pages, confirmations and bulk decisions."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalRequest, Decision, Status
from approvals.web import inbox

pytestmark = pytest.mark.django_db(transaction=True)


def titles(response):
    return [row.title for row in response.context["page"].rows]


@pytest.fixture
def signed_in(client, manager):
    client.force_login(manager)
    return client


def test_tabs_split_waiting_pending_and_decided_with_counts(
    signed_in, register, manager, make_user
):
    register(title="Mine to decide")
    register(title="Someone else's", assignees=["other@example.com"])
    decided = register(title="Already approved")
    services.decide(decided["id"], make_user("other"), "approved", "")
    register(title="My own", requester_email="manager@example.com")

    waiting = signed_in.get("/")
    assert titles(waiting) == ["Mine to decide"]
    assert titles(signed_in.get("/?tab=pending")) == ["Mine to decide", "My own"]
    assert titles(signed_in.get("/?tab=decided")) == ["Already approved"]
    counts = {key: count for key, _label, count, _more in waiting.context["tabs"]}
    assert counts == {"waiting": 1, "pending": 2, "decided": 1, "mine": 1}


def test_search_covers_title_requester_reference_and_description(signed_in, register):
    register(title="Team offsite", external_id="EXP-77")
    register(title="Laptop", requester_email="bob@example.com")
    register(title="Books", description="Three books on Django")
    register(title="Unrelated")

    assert titles(signed_in.get("/?q=offsite")) == ["Team offsite"]
    assert titles(signed_in.get("/?q=exp-77")) == ["Team offsite"]
    assert titles(signed_in.get("/?q=bob@")) == ["Laptop"]
    assert titles(signed_in.get("/?q=django+books")) == ["Books"]


def test_filters_by_requester_amount_and_expiry(signed_in, register):
    register(title="Small", amount="10.00", timeout_seconds=3 * 86400)
    register(
        title="Large",
        amount="5000.00",
        requester_email="bob@example.com",
        timeout_seconds=3 * 86400,
    )
    soon = register(title="Soon", amount="50.00")
    ApprovalRequest.objects.filter(pk=soon["id"]).update(
        expires_at=timezone.now() + datetime.timedelta(hours=2)
    )

    assert titles(signed_in.get("/?requester=BOB@example.com")) == ["Large"]
    assert titles(signed_in.get("/?amount_min=20&amount_max=100")) == ["Soon"]
    assert titles(signed_in.get("/?expiring=on")) == ["Soon"]


def test_sorting_by_newest_amount_and_time_left(signed_in, register):
    register(title="A", amount="30.00", timeout_seconds=7200)
    register(title="B", amount="90.00", timeout_seconds=3600)
    register(title="C", amount="60.00", timeout_seconds=10800)

    assert titles(signed_in.get("/?sort=oldest")) == ["A", "B", "C"]
    assert titles(signed_in.get("/?sort=newest")) == ["C", "B", "A"]
    assert titles(signed_in.get("/?sort=amount")) == ["B", "C", "A"]
    assert titles(signed_in.get("/?sort=time_left")) == ["B", "A", "C"]


def test_invalid_filters_are_a_400_with_the_reason(signed_in):
    response = signed_in.get("/?amount_min=abc&page=0&amount_max=-1")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Enter a number" in html or "Enter a whole number" in html


def test_pages_follow_each_other_without_counting_the_table(signed_in, register, monkeypatch):
    monkeypatch.setattr(inbox, "PAGE_SIZE", 3)
    for n in range(7):
        register(title=f"Report {n}")

    first, third = signed_in.get("/"), signed_in.get("/?page=3")

    assert titles(first) == ["Report 0", "Report 1", "Report 2"]
    assert first.context["page"].has_next and not first.context["page"].has_previous
    assert titles(third) == ["Report 6"] and not third.context["page"].has_next


def test_the_inbox_costs_the_same_queries_for_30_or_200_requests(signed_in, register, receiver):
    def queries_for_inbox():
        with CaptureQueriesContext(connection) as captured:
            assert signed_in.get("/?page=2").status_code == 200
        return len(captured)

    for _ in range(30):  # page 2 has rows either way
        register()
    small = queries_for_inbox()
    for _ in range(170):
        register()
    assert queries_for_inbox() == small


def test_tab_counts_stop_at_the_cap(register, manager, monkeypatch):
    monkeypatch.setattr(inbox, "COUNT_CAP", 3)
    for _ in range(5):
        register()
    assert inbox.capped_count(inbox.tab_queryset(manager, "waiting")) == (3, True)


def test_approve_asks_for_a_confirmation_naming_the_request_and_amount(signed_in, register):
    created = register(title="Lisbon offsite", amount="1840.50")

    confirm = signed_in.post(f"/approvals/{created['id']}/decide", {"outcome": "approved"})

    html = confirm.content.decode()
    assert confirm.status_code == 200
    assert "Approve “Lisbon offsite”?" in html and "Yes, approve 1,840.50 EUR" in html
    assert not Decision.objects.exists()


def test_after_a_decision_the_next_waiting_request_opens(signed_in, register):
    first, second = register(title="First"), register(title="Second")

    response = signed_in.post(
        f"/approvals/{first['id']}/decide", {"outcome": "approved", "confirmed": "on"}
    )
    assert response["Location"] == f"/approvals/{second['id']}/"
    response = signed_in.post(
        f"/approvals/{second['id']}/decide", {"outcome": "approved", "confirmed": "on"}
    )
    assert response["Location"] == "/"


def test_bulk_approval_confirms_then_decides_each_and_names_the_ones_skipped(
    signed_in, register, make_user, receiver
):
    a, b = register(title="Report A", amount="100.00"), register(title="Report B", amount="20.50")
    taken = register(title="Report C")
    own = register(title="My own", requester_email="manager@example.com")
    services.decide(taken["id"], make_user("faster"), "approved", "")
    chosen = [a["id"], b["id"], taken["id"], own["id"]]

    confirm = signed_in.post("/approvals/bulk-decide", {"outcome": "approved", "selected": chosen})
    html = confirm.content.decode()
    assert "Approve 2 requests?" in html and "120.50 EUR" in html
    assert "Will be skipped: This request was already approved by faster@example.com." in html
    assert Decision.objects.count() == 1

    done = signed_in.post(
        "/approvals/bulk-decide",
        {"outcome": "approved", "selected": chosen, "confirmed": "on"},
        follow=True,
    )

    messages = " ".join(str(m) for m in done.context["messages"])
    assert "You approved 2 request(s): “Report A”, “Report B”." in messages
    assert "“Report C” (This request was already approved by faster@example.com.)" in messages
    assert "“My own” (You asked for this approval" in messages
    assert ApprovalRequest.objects.get(pk=a["id"]).status == Status.APPROVED
    assert ApprovalRequest.objects.get(pk=own["id"]).status == Status.PENDING
    assert sorted(c.body["request_id"] for c in receiver.received) == sorted(
        [a["id"], b["id"], taken["id"]]
    )


def test_bulk_rejection_needs_a_comment_and_a_selection(signed_in, register):
    created = register()
    no_comment = signed_in.post(
        "/approvals/bulk-decide", {"outcome": "rejected", "selected": [created["id"]]}, follow=True
    )
    assert "comment is required" in " ".join(str(m) for m in no_comment.context["messages"])
    nothing = signed_in.post("/approvals/bulk-decide", {"outcome": "approved"}, follow=True)
    assert "Select at least one request" in " ".join(str(m) for m in nothing.context["messages"])
    garbage = signed_in.post(
        "/approvals/bulk-decide", {"outcome": "approved", "selected": ["not-a-uuid"]}, follow=True
    )
    assert garbage.status_code == 200
    assert not Decision.objects.exists()


def test_the_request_page_shows_line_items_with_a_total_dates_history_and_deciders(
    signed_in, register, make_user
):
    make_user("colleague")
    created = register(
        details={
            "trip_start": "2026-12-03",
            "submitted": "2026-11-20T09:30:00Z",
            "lines": [
                {"item": "Hotel", "amount": "1440.00"},
                {"item": "Dinner", "amount": 400.5},
            ],
        },
        assignees=["manager@example.com", "colleague@example.com"],
    )

    html = signed_in.get(f"/approvals/{created['id']}/").content.decode()

    assert '<th scope="col" class="">item</th>' in html and '<td class="num">1,440.00</td>' in html
    assert '<td class="num">1,840.50</td>' in html and "Total" in html
    assert '<th scope="col" class="num">amount</th>' in html
    assert "3 Dec 2026" in html and "20 Nov 2026, 09:30 UTC" in html
    assert "manager@example.com, colleague@example.com" in html or (
        "colleague@example.com, manager@example.com" in html
    )
    assert "Registered" in html  # the history
