"""Send back and rounds (contract: "Richer decisions"): a request registered with
`allow_changes_requested` may be sent back for changes, with a comment, on the page and through
the API; the callback and the API say `changes_requested`; a new registration with the same
`external_id` from the same caller is a new round, and the rounds' pages link to each other."""

import json

import pytest

from approvals.identity import tokens
from approvals.models import ApprovalRequest, AuditEvent, Status
from approvals.tests.conftest import API_TOKEN, decide_page
from approvals.tests.test_openapi import check_answer

# Real transactions: callbacks are sent after the decision commits (transaction.on_commit).
pytestmark = pytest.mark.django_db(transaction=True)

STATIC = {"Authorization": f"Bearer {API_TOKEN}"}
NOT_ALLOWED = "This request does not allow changes to be requested."


def state(client, request_id) -> dict:
    response = client.get(f"/api/approvals/{request_id}", headers=STATIC)
    assert response.status_code == 200
    return check_answer(response)


def api_decide(client, request_id, secret, body):
    return client.post(
        f"/api/approvals/{request_id}/decision",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )


# --- Registration -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["true", 1, 0, "yes", [], {}])
def test_allow_changes_requested_must_be_a_boolean(client, registration_body, value):
    response = client.post(
        "/api/approvals",
        registration_body(allow_changes_requested=value),
        content_type="application/json",
        headers=STATIC,
    )
    assert response.status_code == 400
    body = check_answer(response)
    assert body["fields"] == {"allow_changes_requested": ["Must be true or false."]}
    assert not ApprovalRequest.objects.exists()


def test_allow_changes_requested_defaults_to_false(register):
    assert not ApprovalRequest.objects.get(pk=register()["id"]).allow_changes_requested
    approval = ApprovalRequest.objects.get(pk=register(allow_changes_requested=True)["id"])
    assert approval.allow_changes_requested
    registered = approval.audit_events.get(kind=AuditEvent.Kind.REGISTERED)
    assert registered.payload["allow_changes_requested"] is True


# --- The page -----------------------------------------------------------------------------------


def test_the_page_shows_send_back_only_when_allowed(client, register, manager):
    plain, allowing = register(), register(allow_changes_requested=True)
    client.force_login(manager)
    assert "Send back" not in client.get(f"/approvals/{plain['id']}/").content.decode()
    page = client.get(f"/approvals/{allowing['id']}/").content.decode()
    assert '<button type="submit" name="outcome" value="changes_requested">Send back</button>' in (
        page
    )


def test_a_send_back_with_a_comment_closes_it_and_tells_the_workflow(
    client, register, manager, receiver
):
    created = register(allow_changes_requested=True, required_approvals=1)
    client.force_login(manager)
    confirm = client.post(
        f"/approvals/{created['id']}/decide",
        {"outcome": "changes_requested", "comment": "Attach the receipts."},
    )
    assert confirm.status_code == 200
    assert "Yes, send it back for changes" in confirm.content.decode()

    response = decide_page(client, manager, created["id"], "changes_requested", "Attach receipts")

    assert response.status_code == 302
    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert approval.status == Status.CHANGES_REQUESTED and approval.closed_at is not None
    assert [e.kind for e in approval.audit_events.all()] == [
        AuditEvent.Kind.REGISTERED,
        AuditEvent.Kind.CHANGES_REQUESTED,
        AuditEvent.Kind.CALLBACK_SENT,
    ]
    [callback] = receiver.received
    assert callback.body["decision"] == "changes_requested"
    assert callback.body["comment"] == "Attach receipts"
    assert callback.body["decided_by"] == "manager@example.com"
    assert callback.body["decisions"][0]["decision"] == "changes_requested"
    texts = [str(m) for m in client.get("/").context["messages"]]
    assert "You sent back “Team offsite”." in texts
    answer = state(client, created["id"])
    assert (answer["status"], answer["comment"]) == ("changes_requested", "Attach receipts")
    page = client.get(f"/approvals/{created['id']}/").content.decode()
    assert "Sent back" in page and "Attach receipts" in page


def test_a_send_back_closes_it_at_once_whatever_the_approvals_asked(
    client, register, manager, make_user
):
    make_user("second")
    created = register(allow_changes_requested=True, required_approvals=2)
    decide_page(client, manager, created["id"], "changes_requested", "Wrong project code.")
    assert ApprovalRequest.objects.get(pk=created["id"]).status == Status.CHANGES_REQUESTED


def test_a_send_back_without_a_comment_is_refused_at_the_field(client, register, manager):
    created = register(allow_changes_requested=True)
    client.force_login(manager)
    for comment in ("", "   "):
        response = client.post(
            f"/approvals/{created['id']}/decide",
            {"outcome": "changes_requested", "comment": comment, "confirmed": "on"},
        )
        assert response.status_code == 400
        assert "Say what should change: a comment is required to send it back." in (
            response.content.decode()
        )
    assert ApprovalRequest.objects.get(pk=created["id"]).status == Status.PENDING


def test_a_send_back_where_it_is_not_allowed_is_refused_with_a_message(
    client, register, manager, receiver
):
    created = register()
    client.force_login(manager)
    for confirmed in ("", "on"):
        response = client.post(
            f"/approvals/{created['id']}/decide",
            {"outcome": "changes_requested", "comment": "Fix it.", "confirmed": confirmed},
        )
        assert response.status_code == 400
        texts = [str(m) for m in response.context["messages"]]
        assert f"Your decision was not recorded: {NOT_ALLOWED}" in texts
    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert approval.status == Status.PENDING and not approval.decisions.exists()
    assert receiver.received == []


def test_bulk_decisions_do_not_send_back(client, register, manager):
    created = register(allow_changes_requested=True)
    client.force_login(manager)
    response = client.post(
        "/approvals/bulk-decide",
        {"outcome": "changes_requested", "comment": "Fix.", "selected": [created["id"]]},
    )
    assert response.status_code == 302
    assert ApprovalRequest.objects.get(pk=created["id"]).status == Status.PENDING


def test_the_decided_tab_filters_on_sent_back(client, register, manager):
    sent_back, approved = register(allow_changes_requested=True), register()
    decide_page(client, manager, sent_back["id"], "changes_requested", "Fix the dates.")
    decide_page(client, manager, approved["id"], "approved")
    response = client.get("/?tab=decided&status=changes_requested")
    assert response.status_code == 200
    assert [str(row.pk) for row in response.context["page"].rows] == [sent_back["id"]]
    assert "Sent back" in response.content.decode()


# --- The decision API ---------------------------------------------------------------------------


def test_the_api_sends_back_where_it_is_allowed(client, register, manager, receiver):
    secret = tokens.issue(manager, "script").secret
    created = register(allow_changes_requested=True)
    body = {"decision": "changes_requested", "comment": "Split the hotel and the flights."}

    response = api_decide(client, created["id"], secret, body)

    assert response.status_code == 200
    answer = check_answer(response)
    assert answer["status"] == "changes_requested"
    assert answer["decisions"][0]["decision"] == "changes_requested"
    assert receiver.received[0].body["decision"] == "changes_requested"


def test_the_api_refuses_a_send_back_without_a_comment_or_where_not_allowed(
    client, register, manager
):
    secret = tokens.issue(manager, "script").secret
    allowing, plain = register(allow_changes_requested=True), register()
    response = api_decide(client, allowing["id"], secret, {"decision": "changes_requested"})
    assert response.status_code == 400
    assert set(check_answer(response)["fields"]) == {"comment"}
    body = {"decision": "changes_requested", "comment": "Fix it."}
    response = api_decide(client, plain["id"], secret, body)
    assert response.status_code == 400
    assert check_answer(response)["fields"] == {"decision": [NOT_ALLOWED]}
    assert set(ApprovalRequest.objects.values_list("status", flat=True)) == {Status.PENDING}


# --- Rounds -------------------------------------------------------------------------------------


def test_a_second_registration_with_the_same_external_id_is_a_new_round(client, register, manager):
    first = register(external_id="EXP-7", allow_changes_requested=True)
    decide_page(client, manager, first["id"], "changes_requested", "Receipts, please.")
    second = register(external_id="EXP-7", allow_changes_requested=True)
    other = register(external_id="EXP-8")

    assert second["id"] != first["id"] and second["status"] == "pending"
    client.force_login(manager)
    page = client.get(f"/approvals/{second['id']}/").content.decode()
    assert f'href="/approvals/{first["id"]}/"' in page
    assert "Earlier round" in page and "Receipts, please." in page
    assert "Sent back</strong> by manager@example.com" in page
    assert other["id"] not in page
    earlier = client.get(f"/approvals/{first['id']}/").content.decode()
    assert f'href="/approvals/{second["id"]}/"' in earlier and "Later round" in earlier


def test_rounds_are_one_callers_and_the_same_callback_url_is_still_the_same_request(
    client, register, registration_body, manager, minter
):
    body = registration_body(external_id="EXP-9")
    first = client.post("/api/approvals", body, content_type="application/json", headers=STATIC)
    again = client.post("/api/approvals", body, content_type="application/json", headers=STATIC)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    # Another caller's request with the same external id is no round of this one.
    token = minter.token()
    foreign = client.post(
        "/api/approvals",
        registration_body(external_id="EXP-9"),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert foreign.status_code == 201
    client.force_login(manager)
    page = client.get(f"/approvals/{first.json()['id']}/").content.decode()
    assert 'id="rounds"' not in page
