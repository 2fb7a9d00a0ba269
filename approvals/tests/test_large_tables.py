"""What keeps the inbox's search and the admin's lists fast at a million requests: the search's
trigram indexes (PostgreSQL) and the admin's count that stops counting (`approvals.paging`).

The figures are `make bench`'s (docs/benchmarks.md); these tests check the plans and the counts.
"""

import pytest
from django.db import connection
from django.utils import timezone

from approvals import paging
from approvals.models import ApprovalRequest
from approvals.tests.conftest import postgres_only
from approvals.web import inbox

pytestmark = pytest.mark.django_db

ADMIN_LIST = "/admin/approvals/approvalrequest/"


def add_requests(count, title="Report"):
    now = timezone.now()
    ApprovalRequest.objects.bulk_create(
        ApprovalRequest(
            callback_url=f"http://example.invalid/{title}/{n}",
            title=f"{title} {n}",
            requester_email="requester@example.com",
            requester_key="requester@example.com",
            registered_by="tests",
            created_at=now,
            expires_at=now + timezone.timedelta(days=1),
        )
        for n in range(count)
    )


@postgres_only
@pytest.mark.parametrize("column", ["title", "requester_email", "external_id", "description"])
def test_the_inbox_search_can_use_a_trigram_index_of_each_column(column):
    add_requests(50)
    query = inbox.apply(ApprovalRequest.objects.all(), inbox.Filters(query="lisbon"), "pending")
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        # A table this small is read whole; with sequential scans priced out, the planner shows
        # which indexes the query can use (the B-trees of the order, too, are priced out).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"approvalrequest_{column}_trgm" in plan, plan


def test_the_search_finds_a_word_inside_any_column_on_both_databases():
    add_requests(5)
    add_requests(2, title="Trip to Lisbon")
    found = inbox.apply(ApprovalRequest.objects.all(), inbox.Filters(query="LISB"), "pending")
    assert sorted(found.values_list("title", flat=True)) == ["Trip to Lisbon 0", "Trip to Lisbon 1"]


@pytest.fixture
def auditor(admin_user, client):
    client.force_login(admin_user)
    return admin_user


def test_the_admin_counts_a_small_list_exactly(client, auditor):
    add_requests(7)
    page = client.get(ADMIN_LIST)
    assert page.status_code == 200
    assert page.context["cl"].result_count == 7
    assert "7 approval requests" in page.content.decode()


@postgres_only
def test_past_the_exact_limit_the_admin_takes_the_planners_estimate(
    client, auditor, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(paging, "EXACT_UP_TO", 5)
    add_requests(40)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE approvals_approvalrequest")
    page = client.get(ADMIN_LIST)
    assert page.status_code == 200
    assert page.context["cl"].result_count == 40  # the statistics ANALYZE just took
    assert not page.context["cl"].show_full_result_count


def test_on_sqlite_past_the_exact_limit_the_admin_counts(client, auditor, monkeypatch):
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL estimates instead (the test above)")
    monkeypatch.setattr(paging, "EXACT_UP_TO", 5)
    add_requests(40)
    assert client.get(ADMIN_LIST).context["cl"].result_count == 40
