"""What people are shown of a request's details: bounded pages, the whole as JSON, and pages that
stand whatever was stored (README "Security": page bombs, nesting, control characters)."""

import json

import pytest
from django.db.models import JSONField, TextField, Value
from django.db.models.functions import Cast

from approvals.details import SHOWN_CELLS, SHOWN_COLUMNS, SHOWN_DEPTH, SHOWN_ROWS, SHOWN_TEXT
from approvals.models import ApprovalRequest
from approvals.notify import notices, outbox

pytestmark = pytest.mark.django_db

# What a request page, or an admin page, may weigh whatever details the API accepted. Details are
# at most 64 KiB of JSON; escaping (`"` is `&quot;`) and the tables' markup make them bigger, the
# caps keep them within this.
MAX_PAGE_BYTES = 1024 * 1024


@pytest.fixture
def auditor(admin_user):
    admin_user.email = "auditor@example.com"
    admin_user.save()
    return admin_user


def distinct_key_items(count: int) -> list[dict]:
    """Line items whose keys all differ: a table as wide as it is long, without caps."""
    return [{f"k{index}": index} for index in range(count)]


def store_details_text(request_id, text: str) -> None:
    """Store details as JSON text, past the API's checks (as if stored before they existed),
    without Python parsing or serializing them."""
    ApprovalRequest.objects.filter(pk=request_id).update(
        details=Cast(Value(text, output_field=TextField()), output_field=JSONField())
    )


def nested_text(levels: int) -> str:
    return '{"a": ' * (levels - 1) + '{"deepest": 1}' + "}" * (levels - 1)


def page(client, user, request_id):
    client.force_login(user)
    return client.get(f"/approvals/{request_id}/")


def admin_page(client, auditor, request_id):
    client.force_login(auditor)
    return client.get(f"/admin/approvals/approvalrequest/{request_id}/change/")


def test_line_items_with_distinct_keys_give_a_page_of_bounded_size(
    client, register, manager, auditor
):
    created = register(details={"lines": distinct_key_items(2_000)})

    response = page(client, manager, created["id"])

    html = response.content.decode()
    assert response.status_code == 200
    assert len(response.content) < MAX_PAGE_BYTES // 4, len(response.content)
    assert f"Showing the first {SHOWN_ROWS} of 2,000 rows and {SHOWN_COLUMNS} of 2,000" in html
    assert f"/approvals/{created['id']}/details.json" in html
    admin = admin_page(client, auditor, created["id"])
    assert admin.status_code == 200
    assert len(admin.content) < MAX_PAGE_BYTES // 4, len(admin.content)


def test_tables_nested_in_tables_stay_within_one_budget_of_values(client, register, manager):
    # 400 rows, each holding a 12 x 12 table: 58,000 cells in 54 KB of JSON, without a budget.
    inner = distinct_key_items(SHOWN_COLUMNS)
    created = register(details={"lines": [{"part": inner} for _ in range(400)]})

    response = page(client, manager, created["id"])

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<td") <= SHOWN_CELLS + 2 * SHOWN_ROWS
    assert "Not all of the details are shown here" in html
    assert len(response.content) < MAX_PAGE_BYTES // 4, len(response.content)


@pytest.mark.parametrize(
    ("details", "left_out"),
    [
        ({f"field{n}": n for n in range(SHOWN_ROWS + 5)}, "5 more fields not shown"),
        ({"list": list(range(SHOWN_ROWS + 1))}, "1 more item not shown"),
        ({"note": "x" * (SHOWN_TEXT + 4_700)}, "4,700 more characters not shown"),
        ({"x" * (SHOWN_TEXT + 1): "long key"}, "1 more character not shown"),
    ],
)
def test_what_a_page_leaves_out_is_named(client, register, manager, details, left_out):
    created = register(details=details)

    html = page(client, manager, created["id"]).content.decode()

    assert left_out in html
    assert "Not all of the details are shown here" in html
    assert "x" * (SHOWN_TEXT + 1) not in html


def test_the_total_of_line_items_counts_the_rows_left_out(client, register, manager):
    lines = [{"item": f"Night {n}", "amount": "10.00"} for n in range(SHOWN_ROWS + 50)]
    created = register(details={"lines": lines})

    html = page(client, manager, created["id"]).content.decode()

    assert f"Showing the first {SHOWN_ROWS} of {SHOWN_ROWS + 50:,} rows" in html
    assert "The total counts every row." in html
    assert f"{10 * (SHOWN_ROWS + 50):,}.00" in html


def test_details_nested_to_the_limit_are_shown_to_the_deepest_level(client, register, manager):
    details = {"deepest": "bottom"}
    for level in range(SHOWN_DEPTH - 1, 0, -1):
        details = {f"level{level}": details}
    created = register(details=details)

    html = page(client, manager, created["id"]).content.decode()

    assert '<th scope="row">deepest</th><td>bottom</td>' in html
    assert "nested deeper" not in html


@pytest.mark.parametrize("levels", [SHOWN_DEPTH + 1, 926, 2_000])
def test_details_stored_deeper_than_the_limit_still_give_pages(
    client, register, manager, auditor, levels
):
    created = register()
    text = nested_text(levels)
    store_details_text(created["id"], text)

    shown = page(client, manager, created["id"])
    admin = admin_page(client, auditor, created["id"])
    whole = client.get(f"/approvals/{created['id']}/details.json")

    assert shown.status_code == 200 and admin.status_code == 200 and whole.status_code == 200
    assert f"nested deeper than {SHOWN_DEPTH} levels" in shown.content.decode()
    assert f"nested deeper than {SHOWN_DEPTH} levels" in admin.content.decode()
    assert whole.content.decode().replace(" ", "") == text.replace(" ", "")


def test_only_those_who_may_see_the_page_read_the_details_as_json(
    client, register, manager, make_user, auditor
):
    details = {"cost_center": "ENG", "lines": [{"item": "Hotel", "amount": "1440.00"}]}
    created = register(details=details, assignees=["manager@example.com"])
    requester = make_user("alice", approver=False)
    outsider = make_user("olga")  # an approver, but not among the assignees
    url = f"/approvals/{created['id']}/details.json"

    for person in (manager, requester, auditor):
        client.force_login(person)
        response = client.get(url)
        assert response.status_code == 200, person
        assert response["Content-Type"] == "application/json"
        assert response["Cache-Control"] == "private, no-store"
        assert json.loads(response.content) == details
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url)["Location"].startswith("/accounts/login/")


def test_the_admin_shows_details_as_the_page_does_with_a_link_to_the_json(
    client, register, auditor
):
    created = register(details={"cost_center": "<b>ENG</b>", "lines": [{"amount": "1.50"}]})

    html = admin_page(client, auditor, created["id"]).content.decode()

    assert '<th scope="row">cost_center</th><td>&lt;b&gt;ENG&lt;/b&gt;</td>' in html
    assert f'href="/approvals/{created["id"]}/details.json"' in html


def test_a_title_stored_with_line_breaks_stays_on_one_line_in_the_mail(
    register, manager, mailoutbox
):
    created = register()
    forged = "Team offsite\r\nApprove:  https://evil.example/steal\u2028Reject:  x"
    ApprovalRequest.objects.filter(pk=created["id"]).update(title=forged)

    approval = ApprovalRequest.objects.get(pk=created["id"])
    outbox.send([n.pk for n in notices.tell_deciders(approval, notices.Purpose.NEW)])

    [message] = mailoutbox
    lines = message.body.splitlines()
    assert "    Team offsite Approve:  https://evil.example/steal Reject:  x" in lines
    assert not any(line.startswith("Approve:  https://evil") for line in lines)
