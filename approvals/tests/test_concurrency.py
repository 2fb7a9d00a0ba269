"""Races, with real threads on PostgreSQL: one decision per request, one callback per decision."""

import datetime
import threading
import time

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from approvals import delivery, services
from approvals.models import ApprovalRequest, Decision, DeliveryStatus, Status

from .conftest import API_TOKEN, postgres_only

pytestmark = [pytest.mark.django_db(transaction=True), postgres_only]

ROUNDS = 15


def at_once(*functions):
    """Run the functions in threads released together; return ("ok", value) or ("error", e)."""
    barrier = threading.Barrier(len(functions))
    results = [None] * len(functions)

    def run(index, function):
        try:
            barrier.wait()
            results[index] = ("ok", function())
        except Exception as error:  # noqa: BLE001 - the test inspects it
            results[index] = ("error", error)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_two_approvers_at_once_give_one_decision_and_one_callback(register, make_user, receiver):
    anna, ben = make_user("anna"), make_user("ben")
    for _ in range(ROUNDS):
        created = register()
        results = at_once(
            lambda request_id=created["id"]: services.decide(request_id, anna, "approved", "yes"),
            lambda request_id=created["id"]: services.decide(request_id, ben, "rejected", "no"),
        )
        outcomes = sorted(kind for kind, _ in results)
        assert outcomes == ["error", "ok"], results
        [(_, refused)] = [r for r in results if r[0] == "error"]
        [(_, decision)] = [r for r in results if r[0] == "ok"]
        assert isinstance(refused, services.DecisionRefused)
        assert f"already {decision.outcome} by {decision.decided_by}" in str(refused)
        assert Decision.objects.filter(request_id=created["id"]).count() == 1
    assert len(receiver.received) == ROUNDS
    assert len({c.body["request_id"] for c in receiver.received}) == ROUNDS


def test_a_double_click_gives_one_decision(client, register, manager, receiver):
    for _ in range(ROUNDS):
        created = register()

        def click(request_id=created["id"]):
            browser = Client()
            browser.force_login(manager)
            return browser.post(
                f"/approvals/{request_id}/decide", {"outcome": "approved", "confirmed": "on"}
            )

        statuses = sorted(response.status_code for _, response in at_once(click, click))
        assert statuses == [302, 409]
        assert Decision.objects.filter(request_id=created["id"]).count() == 1
    assert len(receiver.received) == ROUNDS


def test_a_decision_racing_a_cancel_has_one_winner(register, manager, receiver):
    decided = 0
    for _ in range(ROUNDS):
        created = register()
        decision, cancel = at_once(
            lambda request_id=created["id"]: services.decide(request_id, manager, "approved", ""),
            lambda request_id=created["id"]: services.cancel(request_id, "api-token"),
        )
        request = ApprovalRequest.objects.get(pk=created["id"])
        if decision[0] == "ok":
            decided += 1
            assert isinstance(cancel[1], services.AlreadyDecided)
            assert request.status == Status.APPROVED
        else:
            assert isinstance(decision[1], services.DecisionRefused)
            assert "cancelled" in str(decision[1])
            assert cancel[0] == "ok" and request.status == Status.CANCELLED
            assert not request.decisions.exists()
    assert len(receiver.received) == decided


def test_a_decision_racing_the_expiry_has_one_winner(register, manager, receiver):
    decided = 0
    for _ in range(ROUNDS):
        created = register()
        deadline = timezone.now() + datetime.timedelta(milliseconds=30)
        ApprovalRequest.objects.filter(pk=created["id"]).update(expires_at=deadline)

        def expire_at_deadline(request_id=created["id"], deadline=deadline):
            time.sleep(max(0.0, (deadline - timezone.now()).total_seconds()))
            return services.expire(request_id)

        def decide_near_deadline(request_id=created["id"]):
            time.sleep(0.029)
            return services.decide(request_id, manager, "approved", "")

        at_once(decide_near_deadline, expire_at_deadline)
        request = ApprovalRequest.objects.get(pk=created["id"])
        has_decision = request.decisions.exists()
        assert request.status == (Status.APPROVED if has_decision else Status.EXPIRED)
        decided += has_decision
    assert len(receiver.received) == decided


def test_the_same_registration_at_once_creates_one_request(registration_body):
    body = registration_body()

    def post():
        return Client().post(
            "/api/approvals",
            body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )

    answers = [response for _, response in at_once(*[post] * 6)]

    assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert ApprovalRequest.objects.count() == 1


def test_several_delivery_workers_send_each_callback_once(register, manager, receiver):
    created = [register() for _ in range(60)]
    for each in created:
        receiver.answers[delivery_path(each)] = [503]  # every first attempt fails
    for each in created:
        services.decide(each["id"], manager, "approved", "")
    ApprovalRequest.objects.update(delivery_next_attempt_at=timezone.now())

    at_once(*[lambda: drain() for _ in range(4)])

    assert ApprovalRequest.objects.exclude(delivery_status=DeliveryStatus.DELIVERED).count() == 0
    paths = [c.path for c in receiver.received]
    assert len(paths) == 60 and len(set(paths)) == 60
    assert set(ApprovalRequest.objects.values_list("delivery_attempts", flat=True)) == {2}


def drain():
    while delivery.send_due(limit=10):
        pass


def delivery_path(created):
    from urllib.parse import urlsplit

    return urlsplit(ApprovalRequest.objects.get(pk=created["id"]).callback_url).path
