"""Callbacks through real HTTP faults: every decision lands exactly once, none is invented."""

import random
from collections import Counter
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.utils import timezone

from approvals import delivery, services
from approvals.models import ACTIVE_DELIVERY_STATES, ApprovalRequest, AuditEvent, DeliveryStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def short_timeouts(monkeypatch, receiver):
    """Hangs end quickly: the client gives up after 0.3 s, the receiver closes after 1 s."""
    monkeypatch.setattr(delivery, "FIRST_ATTEMPT_READ_TIMEOUT_SECONDS", 0.3)
    monkeypatch.setattr(delivery, "READ_TIMEOUT_SECONDS", 0.3)
    receiver.hang_seconds = 1.0


def path_of(request_id):
    return urlsplit(ApprovalRequest.objects.get(pk=request_id).callback_url).path


@pytest.mark.parametrize(
    ("fault", "error"),
    [("reset", "ConnectionError"), ("hang", "timed out")],
)
def test_a_reset_or_a_hang_is_retried(register, manager, receiver, short_timeouts, fault, error):
    created = register()
    receiver.answers[path_of(created["id"])] = [fault]

    services.decide(created["id"], manager, "approved", "")

    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert approval.delivery_status == DeliveryStatus.RETRYING
    assert error in approval.delivery_last_error
    assert receiver.received == []

    ApprovalRequest.objects.filter(pk=created["id"]).update(delivery_next_attempt_at=timezone.now())
    call_command("deliver_callbacks", verbosity=0)

    assert ApprovalRequest.objects.get(pk=created["id"]).delivery_status == DeliveryStatus.DELIVERED
    assert len(receiver.received) == 1


def test_a_batch_with_a_third_of_first_attempts_failing_is_delivered_exactly_once(
    register, make_user, receiver, short_timeouts
):
    managers = [make_user(f"manager{n}") for n in range(3)]
    decided = [register(title=f"Report {n}") for n in range(500)]
    undecided = [register(title=f"Waiting {n}") for n in range(50)]
    shuffle = random.Random(20261126)
    faults = {}
    for created in decided:
        if shuffle.random() < 1 / 3:
            fault = shuffle.choice([503, 503, 500, 429, 401, "reset", "reset", "hang"])
            # On a 401 google-auth refreshes the token and tries again, up to twice, by itself.
            faults[created["id"]] = [fault] * 3 if fault == 401 else [fault]
            receiver.answers[path_of(created["id"])] = list(faults[created["id"]])

    for n, created in enumerate(decided):
        outcome = "approved" if n % 4 else "rejected"
        services.decide(created["id"], managers[n % 3], outcome, "batch")

    first_failures = ApprovalRequest.objects.filter(delivery_status=DeliveryStatus.RETRYING).count()
    passes = 0
    while ApprovalRequest.objects.filter(delivery_status__in=ACTIVE_DELIVERY_STATES).exists():
        passes += 1
        assert passes <= 5, "callbacks still undelivered after 5 passes"
        ApprovalRequest.objects.filter(delivery_status__in=ACTIVE_DELIVERY_STATES).update(
            delivery_next_attempt_at=timezone.now()
        )
        call_command("deliver_callbacks", verbosity=0)

    print(
        f"\n500 decisions: {first_failures} first attempts failed "
        f"({Counter(str(f[0]) for f in faults.values())}); delivered after {passes} pass(es)"
    )
    assert first_failures == len(faults)
    assert 120 <= first_failures <= 210  # about a third
    delivered = Counter(c.body["request_id"] for c in receiver.received)
    assert set(delivered) == {created["id"] for created in decided}
    assert set(delivered.values()) == {1}
    assert not {created["id"] for created in undecided} & set(delivered)
    for callback in receiver.received:
        approval = ApprovalRequest.objects.get(pk=callback.body["request_id"])
        assert callback.body["decision"] == approval.status
        assert callback.body["decided_by"] == approval.decisions.get().decided_by
    assert ApprovalRequest.objects.filter(delivery_status=DeliveryStatus.DELIVERED).count() == 500
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CALLBACK_SENT).count() == 500
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CALLBACK_FAILED).count() == first_failures
