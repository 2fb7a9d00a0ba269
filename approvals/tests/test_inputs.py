"""Approver inputs (contract: "Richer decisions"): registered, asked on the page, the e-mail's
confirmation page, bulk and the API, checked on the server, and kept and sent with the decision."""

import csv
import io
import json

import pytest

from approvals.identity import tokens
from approvals.models import ApprovalRequest, AuditEvent, Status
from approvals.notify import links
from approvals.tests.conftest import API_TOKEN
from approvals.tests.test_api_decisions import decide as decide_api
from approvals.tests.test_openapi import check_answer

pytestmark = pytest.mark.django_db(transaction=True)

AMOUNT_ASKED = {"name": "amount", "label": "Approved amount", "type": "number", "required": True}
EXPENSE_INPUTS = [
    {**AMOUNT_ASKED, "min": 0, "max": "1000.00"},
    {
        "name": "cost_center",
        "label": "Cost center",
        "type": "choice",
        "choices": ["R&D", "Sales"],
        "required": True,
    },
    {"name": "pay_on", "label": "Pay on", "type": "date"},
    {"name": "note", "label": "Note for accounting", "type": "text"},
    {"name": "receipts_seen", "label": "I saw the receipts", "type": "boolean", "required": True},
    {"name": "reason", "label": "Reason code", "type": "text", "when": ["rejected"]},
]
GOOD_VALUES = {
    "input_amount": "800.00",
    "input_cost_center": "R&D",
    "input_pay_on": "2030-06-30",
    "input_note": "",
    "input_receipts_seen": "on",
}


def register_raw(client, registration_body, **fields):
    return client.post(
        "/api/approvals",
        registration_body(**fields),
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )


@pytest.fixture
def expense(register):
    """A request for 1,000.00 EUR asking the expense inputs."""
    return register(amount="1000.00", currency="EUR", inputs=EXPENSE_INPUTS)


def post_decision(client, user, request_id, outcome="approved", comment="", **values):
    client.force_login(user)
    return client.post(
        f"/approvals/{request_id}/decide",
        {"outcome": outcome, "comment": comment, "confirmed": "on", **values},
    )


# --- Registration ----------------------------------------------------------------------------


def test_registered_inputs_are_stored_with_every_key_filled_in(client, expense):
    stored = ApprovalRequest.objects.get(pk=expense["id"]).inputs
    assert [spec["name"] for spec in stored] == [spec["name"] for spec in EXPENSE_INPUTS]
    assert stored[0] == {
        "name": "amount",
        "label": "Approved amount",
        "type": "number",
        "required": True,
        "when": ["approved"],
        "choices": [],
        "min": "0",
        "max": "1000.00",
    }
    assert stored[-1]["when"] == ["rejected"]
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.REGISTERED)
    assert event.payload["inputs"] == [spec["name"] for spec in EXPENSE_INPUTS]


def text_input(**fields):
    return {"name": "x", "label": "X", "type": "text", **fields}


@pytest.mark.parametrize(
    ("inputs", "key", "message"),
    [
        ({"name": "x"}, "inputs", "list"),
        ([text_input()] * 21, "inputs", "At most 20"),
        (["x"], "inputs[0]", "object"),
        ([text_input(name="Bad")], "inputs[0].name", "a-z"),
        ([text_input(name="9x")], "inputs[0].name", "a-z"),
        ([text_input(name="x" * 41)], "inputs[0].name", "a-z"),
        ([{"label": "X", "type": "text"}], "inputs[0].name", "required"),
        ([text_input(), text_input()], "inputs[1].name", "Another input"),
        ([text_input(label="")], "inputs[0].label", "1 to 80"),
        ([text_input(label="x" * 81)], "inputs[0].label", "1 to 80"),
        ([text_input(label=5)], "inputs[0].label", "string"),
        ([text_input(type="file")], "inputs[0].type", "one of"),
        ([text_input(required="yes")], "inputs[0].required", "true or false"),
        ([text_input(choices=["a"])], "inputs[0].choices", "Only for a choice"),
        ([text_input(type="choice")], "inputs[0].choices", "Required for a choice"),
        ([text_input(type="choice", choices=[])], "inputs[0].choices", "1 to 50"),
        ([text_input(type="choice", choices=["a"] * 2)], "inputs[0].choices", "once"),
        (
            [text_input(type="choice", choices=[str(i) for i in range(51)])],
            "inputs[0].choices",
            "1 to 50",
        ),
        ([text_input(type="choice", choices=[1])], "inputs[0].choices", "string"),
        ([text_input(min=1)], "inputs[0].min", "Only for a number"),
        ([text_input(type="number", max="ten")], "inputs[0].max", "decimal"),
        ([text_input(type="number", max=True)], "inputs[0].max", "number"),
        ([text_input(type="number", min=5, max=1)], "inputs[0].max", "below min"),
        ([text_input(when=[])], "inputs[0].when", "non-empty"),
        ([text_input(when=["maybe"])], "inputs[0].when", "decisions"),
        ([text_input(when="approved")], "inputs[0].when", "list"),
        ([text_input(colour="red")], "inputs[0].colour", "Unknown field"),
    ],
)
def test_invalid_inputs_are_refused_naming_the_input_and_its_key(
    client, registration_body, inputs, key, message
):
    response = register_raw(client, registration_body, inputs=inputs)
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert all(name.startswith("inputs") for name in fields)
    assert message in " ".join(fields[key]), fields
    assert not ApprovalRequest.objects.exists()


def test_send_back_is_a_decision_an_input_may_be_asked_for(client, register):
    created = register(inputs=[text_input(when=["changes_requested", "rejected"])])
    assert ApprovalRequest.objects.get(pk=created["id"]).inputs[0]["when"] == [
        "changes_requested",
        "rejected",
    ]


# --- The request page ------------------------------------------------------------------------


def test_the_page_shows_each_input_as_a_labelled_field_and_the_partial_approval(
    client, manager, expense
):
    client.force_login(manager)
    page = client.get(f"/approvals/{expense['id']}/").content.decode()
    assert '<label for="id_input_amount">Approved amount (of 1,000.00 EUR asked)</label>' in page
    assert 'type="number"' in page and 'max="1000.00"' in page
    assert '<select name="input_cost_center"' in page and '<option value="R&amp;D">' in page
    assert 'type="date"' in page and 'name="input_pay_on"' in page
    assert 'type="checkbox" name="input_receipts_seen"' in page
    assert "Required to approve." in page and "Optional to reject." in page


@pytest.mark.parametrize(
    ("changed", "field", "message"),
    [
        ({"input_amount": ""}, "input_amount", "required"),
        ({"input_amount": "twelve"}, "input_amount", "decimal"),
        ({"input_amount": "1000.01"}, "input_amount", "at most 1000.00"),
        ({"input_amount": "-1"}, "input_amount", "at least 0"),
        ({"input_cost_center": "Marketing"}, "input_cost_center", "valid choice"),
        ({"input_cost_center": ""}, "input_cost_center", "required"),
        ({"input_pay_on": "30/06/2030"}, "input_pay_on", "date such as"),
        ({"input_pay_on": "2030-02-30"}, "input_pay_on", "date such as"),
        ({"input_note": "a\u0000b"}, "input_note", "Null characters"),
        ({"input_receipts_seen": ""}, "input_receipts_seen", "Tick this box"),
    ],
)
def test_the_page_refuses_invalid_values_with_a_message_at_the_field(
    client, manager, expense, changed, field, message
):
    values = {**GOOD_VALUES, **changed}
    values = {name: value for name, value in values.items() if value != ""}
    response = post_decision(client, manager, expense["id"], **values)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert message in " ".join(errors[field]), errors
    assert f'id="id_{field}_error"' in response.content.decode()
    assert ApprovalRequest.objects.get(pk=expense["id"]).status == Status.PENDING


def test_the_confirmation_shows_and_carries_the_values(client, manager, expense):
    client.force_login(manager)
    values = {**GOOD_VALUES, "input_note": "Split"}
    response = client.post(f"/approvals/{expense['id']}/decide", {"outcome": "approved", **values})
    assert response.status_code == 200
    page = response.content.decode()
    assert "<dt>Approved amount (of 1,000.00 EUR asked)</dt><dd>800.00</dd>" in page
    assert "<dt>I saw the receipts</dt><dd>Yes</dd>" in page
    assert '<input type="hidden" name="input_amount" value="800.00">' in page
    assert '<input type="hidden" name="input_receipts_seen" value="on">' in page
    assert not ApprovalRequest.objects.get(pk=expense["id"]).decisions.exists()


def test_a_partial_approval_reaches_the_decision_the_audit_the_callback_and_the_api(
    client, manager, expense, receiver
):
    response = post_decision(client, manager, expense["id"], **GOOD_VALUES)
    assert response.status_code == 302
    expected = {
        "amount": "800.00",
        "cost_center": "R&D",
        "pay_on": "2030-06-30",
        "note": None,
        "receipts_seen": True,
    }
    approval = ApprovalRequest.objects.get(pk=expense["id"])
    assert approval.decisions.get().inputs == expected
    event = approval.audit_events.get(kind=AuditEvent.Kind.APPROVED)
    assert event.payload["inputs"] == expected
    (callback,) = receiver.received
    assert callback.body["inputs"] == expected
    assert list(callback.body)[-1] == "inputs"
    state = check_answer(
        client.get(
            f"/api/approvals/{expense['id']}", headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
    )
    assert state["inputs"] == expected
    page = client.get(f"/approvals/{expense['id']}/").content.decode()
    assert "<dt>amount</dt><dd>800.00</dd>" in page


def test_which_inputs_apply_depends_on_the_decision(client, manager, expense, receiver):
    """A rejection asks only for the inputs whose `when` names it: the approval's required
    ones do not stand in its way, and its own are sent."""
    response = post_decision(
        client, manager, expense["id"], "rejected", "Too much", input_reason="R7"
    )
    assert response.status_code == 302
    (callback,) = receiver.received
    assert callback.body["decision"] == "rejected"
    assert callback.body["inputs"] == {"reason": "R7"}


def test_the_callback_carries_empty_inputs_when_none_were_asked(
    client, manager, register, receiver
):
    created = register()
    assert post_decision(client, manager, created["id"]).status_code == 302
    (callback,) = receiver.received
    assert callback.body["inputs"] == {}
    assert list(callback.body)[-1] == "inputs"


def test_an_optional_unticked_box_is_false_and_a_ticked_one_true(client, manager, register):
    created = register(inputs=[{"name": "urgent", "label": "Urgent", "type": "boolean"}])
    assert post_decision(client, manager, created["id"]).status_code == 302
    assert ApprovalRequest.objects.get(pk=created["id"]).decisions.get().inputs == {"urgent": False}


# --- The e-mail's confirmation page ----------------------------------------------------------


def test_the_email_confirmation_page_asks_the_inputs_of_its_decision(
    client, manager, expense, receiver
):
    approval = ApprovalRequest.objects.get(pk=expense["id"])
    url = links.decision_url(approval, manager, "approved")
    path = url.removeprefix("http://testserver")
    client.force_login(manager)
    page = client.get(path).content.decode()
    assert "Approved amount (of 1,000.00 EUR asked)" in page
    assert "input_reason" not in page
    refused = client.post(path, {**GOOD_VALUES, "input_amount": "5000"})
    assert refused.status_code == 400
    assert "at most 1000.00" in refused.content.decode()
    assert client.post(path, GOOD_VALUES).status_code == 302
    (callback,) = receiver.received
    assert callback.body["inputs"]["amount"] == "800.00"


# --- Bulk ------------------------------------------------------------------------------------


def test_bulk_approval_skips_requests_that_ask_for_required_inputs_saying_why(
    client, manager, register, expense, receiver
):
    plain = register()
    client.force_login(manager)
    selected = {"outcome": "approved", "selected": [plain["id"], expense["id"]]}
    confirm = client.post("/approvals/bulk-decide", selected).content.decode()
    assert (
        "Will be skipped: it asks for “Approved amount”, “Cost center”, “I saw the receipts”"
        in (confirm)
    )
    response = client.post("/approvals/bulk-decide", {**selected, "confirmed": "on"}, follow=True)
    texts = " ".join(str(m) for m in response.context["messages"])
    assert "You approved 1 request(s)" in texts
    assert "decide it on its own page" in texts
    assert ApprovalRequest.objects.get(pk=expense["id"]).status == Status.PENDING
    assert [c.body["request_id"] for c in receiver.received] == [plain["id"]]


def test_bulk_rejection_is_not_held_up_by_the_approvals_inputs(client, manager, expense):
    client.force_login(manager)
    body = {"outcome": "rejected", "comment": "No", "selected": [expense["id"]], "confirmed": "on"}
    client.post("/approvals/bulk-decide", body)
    approval = ApprovalRequest.objects.get(pk=expense["id"])
    assert approval.status == Status.REJECTED
    assert approval.decisions.get().inputs == {"reason": None}


# --- The decision API ------------------------------------------------------------------------

API_VALUES = {
    "amount": 800,
    "cost_center": "Sales",
    "pay_on": "2030-06-30",
    "receipts_seen": True,
}


def test_the_api_decides_with_inputs_and_answers_them_in_the_state(
    client,
    manager,
    expense,
    receiver,
):
    body = {"decision": "approved", "inputs": API_VALUES}
    response = decide_api(client, expense["id"], tokens.issue(manager, "script").secret, body)
    assert response.status_code == 200, response.content
    expected = {**API_VALUES, "amount": "800", "note": None}
    assert check_answer(response)["inputs"] == expected
    (callback,) = receiver.received
    assert callback.body["inputs"] == expected


@pytest.mark.parametrize(
    ("changed", "key", "message"),
    [
        ({"amount": None}, "inputs.amount", "required"),
        ({"amount": "1e3"}, "inputs.amount", "decimal"),
        ({"amount": 1000.5}, "inputs.amount", "at most"),
        ({"amount": True}, "inputs.amount", "number"),
        ({"cost_center": "Marketing"}, "inputs.cost_center", "one of"),
        ({"pay_on": "2030-6-30"}, "inputs.pay_on", "date such as"),
        ({"pay_on": 20300630}, "inputs.pay_on", "date such as"),
        ({"note": ["a"]}, "inputs.note", "string"),
        ({"receipts_seen": False}, "inputs.receipts_seen", "Tick"),
        ({"receipts_seen": "maybe"}, "inputs.receipts_seen", "true or false"),
        ({"colour": "red"}, "inputs.colour", "no such input"),
        ({"reason": "R7"}, "inputs.reason", "no such input"),
    ],
)
def test_the_api_refuses_invalid_inputs_naming_each(
    client,
    manager,
    expense,
    changed,
    key,
    message,
):
    body = {"decision": "approved", "inputs": {**API_VALUES, **changed}}
    response = decide_api(
        client, expense["id"], tokens.issue(manager, "script").secret, json.dumps(body)
    )
    assert response.status_code == 400
    fields = check_answer(response)["fields"]
    assert message in " ".join(fields[key]), fields
    assert ApprovalRequest.objects.get(pk=expense["id"]).status == Status.PENDING


# --- The auditor's view ----------------------------------------------------------------------


def test_the_admin_and_the_csv_export_show_the_values(client, manager, expense, auditor):
    assert post_decision(client, manager, expense["id"], **GOOD_VALUES).status_code == 302
    client.force_login(auditor)
    page = client.get(f"/admin/approvals/approvalrequest/{expense['id']}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "&quot;amount&quot;: &quot;800.00&quot;" in text  # the decision's inputs
    assert "Approved amount" in text  # the request's specs
    response = client.get("/admin/approvals/approvalrequest/export/")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    (row,) = rows
    assert json.loads(row["inputs"]) == {
        "amount": "800.00",
        "cost_center": "R&D",
        "note": None,
        "pay_on": "2030-06-30",
        "receipts_seen": True,
    }


def test_a_value_the_field_itself_refuses_gets_one_message(client, manager, expense):
    values = {**GOOD_VALUES, "input_cost_center": "Marketing"}
    response = post_decision(client, manager, expense["id"], **values)
    (message,) = response.context["form"].errors["input_cost_center"]
    assert "valid choice" in message
