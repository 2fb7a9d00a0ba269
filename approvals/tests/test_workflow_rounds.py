"""The workflow in rounds (workflows/expense_approval_rounds.yaml): after a send back it waits for
the resubmission on a second callback endpoint and registers a new round with the same
external_id, up to `max_rounds`. Run with the small interpreter of test_workflow_definition
against the real registration API and `services.decide`, as Cloud Workflows is not available."""

import itertools
from types import SimpleNamespace

import pytest

from approvals import registration, services, wire
from approvals.models import ApprovalRequest, Status
from approvals.tests import test_workflow_definition as wf
from approvals.tests.conftest import API_TOKEN

pytestmark = pytest.mark.django_db

ROUNDS = wf.WORKFLOWS / "expense_approval_rounds.yaml"
REPORT = {
    "title": "Trip to Lyon",
    "requester_email": "ann@example.com",
    "amount": "412.50",
    "currency": "EUR",
    "external_id": "EXP-1042",
}


@pytest.fixture(scope="module")
def rounds_definition():
    return wf.load(ROUNDS)


@pytest.fixture(autouse=True)
def workflows_functions(monkeypatch, settings):
    """`map.merge` (Workflows' standard library: the second map's keys win), which only this
    definition uses; and the callback URLs Workflows makes."""
    merge = lambda first, second: {**first, **second}  # noqa: E731
    monkeypatch.setitem(wf.NAMES, "map", SimpleNamespace(get=wf._map_get, merge=merge))
    settings.APPROVALS_CALLBACK_URL_PREFIXES = ["https://workflowexecutions.googleapis.com/v1/"]


class RoundStandIns(wf.StandIns):
    """Approver's API for real; each callback endpoint its own URL, as Workflows makes them.
    `decide(approval, round)` takes the decision of a round (a decision, or None for no
    callback); `resubmit(round)` answers the resubmission's body (None: none came in time)."""

    def __init__(self, client, decide, resubmit):
        super().__init__(register=self._register, cancel=self._cancel)
        self.client, self.decide, self.resubmit = client, decide, resubmit
        self.urls = (wf.CALLBACK_URL.replace("cb-1", f"cb-{n}") for n in itertools.count(1))
        self.resubmission_url = None
        self.round = 0

    def _register(self, body):
        response = self.client.post(
            "/api/approvals",
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
        assert response.status_code == 201, response.content
        self.round += 1
        return response.json()

    def _cancel(self, request_id):
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        response = self.client.post(f"/api/approvals/{request_id}/cancel", headers=headers)
        return response.status_code, response.json()

    def __call__(self, function, args):
        if function == "events.create_callback_endpoint":
            self.calls.append((function, dict(args)))
            url = next(self.urls)
            self.resubmission_url = self.resubmission_url or url  # the workflow's first one
            return {"url": url}
        if function == "events.await_callback":
            self.calls.append((function, dict(args)))
            if args["callback"]["url"] == self.resubmission_url:
                body = self.resubmit(self.round)
            else:
                approval = ApprovalRequest.objects.get(callback_url=args["callback"]["url"])
                body = self.decide(approval, self.round)
            if body is None:
                raise wf.workflow_error("TimeoutError", "timed out waiting for a callback")
            return {"http_request": {"method": "POST", "body": body}}
        return super().__call__(function, args)


def decider(manager, outcomes):
    """Decide round N with `outcomes[N - 1]` as `manager`; the callback body Approver sends."""

    def decide(approval, round_number):
        outcome = outcomes[round_number - 1]
        services.decide(approval.pk, manager, outcome, f"Round {round_number}: {outcome}")
        approval.refresh_from_db()
        return wire.callback_body(approval)

    return decide


def test_each_round_allows_a_send_back_and_carries_the_external_id(rounds_definition):
    body = wf.rendered_body(rounds_definition, REPORT)
    assert set(body) <= registration.FIELDS
    assert body["allow_changes_requested"] is True
    assert body["external_id"] == "EXP-1042"
    assert registration.parse(body).allow_changes_requested


def test_the_resubmission_waits_on_its_own_endpoint(rounds_definition):
    endpoints = wf.calls(rounds_definition, "events.create_callback_endpoint")
    assert [e["args"]["http_callback_method"] for e in endpoints] == ["POST", "POST"]
    waits = [body["try"] for _, body in wf.all_steps(rounds_definition) if "try" in body]
    awaited = {
        wf.expression(w["args"]["callback"])
        for w in waits
        if w.get("call") == "events.await_callback"
    }
    assert awaited == {e["result"] for e in endpoints}
    for wait in waits:
        if wait.get("call") == "events.await_callback":
            assert wait["args"].get("timeout") is not None


def test_sent_back_resubmitted_and_approved_in_the_second_round(rounds_definition, client, manager):
    stand_ins = RoundStandIns(
        client,
        decider(manager, ["changes_requested", "approved"]),
        resubmit=lambda round_number: {"amount": "380.00", "description": "Without the hotel."},
    )

    result = wf.execute(rounds_definition, REPORT, stand_ins)

    assert (result["outcome"], result["round"], result["external_id"]) == (
        "approved",
        2,
        "EXP-1042",
    )
    assert result["comment"] == "Round 2: approved"
    first, second = ApprovalRequest.objects.order_by("created_at", "pk")
    assert (first.status, second.status) == (Status.CHANGES_REQUESTED, Status.APPROVED)
    assert first.external_id == second.external_id == "EXP-1042"
    assert first.callback_url != second.callback_url
    assert (str(second.amount), second.description) == ("380.000", "Without the hotel.")
    assert second.title == "Trip to Lyon"
    assert result["request_id"] == str(second.pk)
    client.force_login(manager)
    page = client.get(f"/approvals/{second.pk}/").content.decode()
    assert f'href="/approvals/{first.pk}/"' in page and "Round 1: changes_requested" in page


def test_the_rounds_end_sent_back_at_the_limit(rounds_definition, client, manager):
    stand_ins = RoundStandIns(
        client,
        decider(manager, ["changes_requested"] * 2),
        resubmit=lambda round_number: {"amount": f"{400 - round_number}.00"},
    )
    report = {**REPORT, "max_rounds": 2}

    result = wf.execute(rounds_definition, report, stand_ins)

    assert (result["outcome"], result["round"], result["max_rounds"]) == ("sent_back", 2, 2)
    assert result["resubmitted"] is False
    assert result["comment"] == "Round 2: changes_requested"
    assert ApprovalRequest.objects.filter(external_id="EXP-1042").count() == 2
    assert len(stand_ins.called("events.await_callback")) == 3  # two decisions, one resubmission


def test_three_rounds_by_default(rounds_definition, client, manager):
    stand_ins = RoundStandIns(
        client, decider(manager, ["changes_requested"] * 3), resubmit=lambda n: {}
    )
    result = wf.execute(rounds_definition, REPORT, stand_ins)
    assert (result["outcome"], result["round"]) == ("sent_back", 3)
    assert ApprovalRequest.objects.count() == 3


def test_no_resubmission_in_time_ends_sent_back(rounds_definition, client, manager):
    stand_ins = RoundStandIns(
        client, decider(manager, ["changes_requested"]), resubmit=lambda n: None
    )
    result = wf.execute(rounds_definition, REPORT, stand_ins)
    assert (result["outcome"], result["round"], result["resubmitted"]) == ("sent_back", 1, False)
    assert ApprovalRequest.objects.count() == 1


def test_a_rejection_ends_the_rounds_at_once(rounds_definition, client, manager):
    stand_ins = RoundStandIns(client, decider(manager, ["rejected"]), resubmit=lambda n: {})
    result = wf.execute(rounds_definition, REPORT, stand_ins)
    assert (result["outcome"], result["round"]) == ("rejected", 1)
    assert result["comment"] == "Round 1: rejected"


def test_a_timeout_cancels_the_round_and_returns_timed_out(rounds_definition, client):
    stand_ins = RoundStandIns(client, lambda approval, n: None, resubmit=lambda n: {})
    result = wf.execute(rounds_definition, REPORT, stand_ins)
    assert (result["outcome"], result["round"]) == ("timed_out", 1)
    [cancel] = [args for args in stand_ins.called("http.post") if "/cancel" in args["url"]]
    assert ApprovalRequest.objects.get().status == Status.CANCELLED
    assert cancel["url"].endswith(f"/api/approvals/{result['request_id']}/cancel")


def test_max_rounds_below_one_fails_before_anything_is_created(rounds_definition, client):
    stand_ins = RoundStandIns(client, lambda approval, n: None, resubmit=lambda n: {})
    with pytest.raises(wf.WorkflowError, match="max_rounds"):
        wf.execute(rounds_definition, {**REPORT, "max_rounds": 0}, stand_ins)
    assert stand_ins.calls == []


def test_the_definition_is_well_formed_as_the_others(rounds_definition):
    wf.test_definition_has_a_main_workflow_taking_the_report(rounds_definition)
    wf.test_every_step_is_a_single_named_step_and_every_jump_lands(rounds_definition)
    wf.test_every_expression_is_whole(rounds_definition)
    wf.test_approver_url_comes_from_the_user_defined_environment_variable(rounds_definition)
    wf.test_registration_authenticates_with_an_oidc_token_for_an_explicit_audience(
        rounds_definition
    )
    wf.test_registration_is_retried_since_it_is_idempotent(rounds_definition)
