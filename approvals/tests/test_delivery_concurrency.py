"""A backlog of due callbacks drained by one pass's threads: each sent once, recorded once.

The threads only speak HTTP (the pass's own thread claims and records), so they run on both
databases, and inside a caller's transaction too.
"""

import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.utils import timezone

from approvals import delivery, services
from approvals.models import ApprovalRequest, AuditEvent, DeliveryStatus
from approvals.tests.conftest import postgres_only

# The first attempts run once the decisions commit, so these tests commit.
pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(condition, seconds: float = 30) -> bool:
    """Whether `condition()` came true within `seconds` (a bound on a hang, not a timing)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        time.sleep(0.01)
    return condition()


@pytest.fixture
def backlog(register, manager, receiver):
    """60 decided requests whose first callback failed, all due again now."""
    created = [register(title=f"Backlog {n}") for n in range(60)]
    for row in created:
        url = ApprovalRequest.objects.get(pk=row["id"]).callback_url
        receiver.answers[urlsplit(url).path] = [503, "hold"]
        services.decide(row["id"], manager, "approved", "")
    ApprovalRequest.objects.update(delivery_next_attempt_at=timezone.now())
    return [row["id"] for row in created]


def test_a_backlog_drained_by_eight_threads_has_eight_callbacks_in_flight_at_once(
    backlog, receiver
):
    [attempted] = passes_holding(receiver, 8, lambda: delivery.send_due(concurrency=8))

    assert attempted == len(backlog)


def test_a_backlog_drained_concurrently_sends_and_records_each_callback_once(backlog, receiver):
    receiver.release.set()
    attempted = delivery.send_due(concurrency=8, batch_size=25)

    assert attempted == len(backlog)
    assert_sent_and_recorded_once(backlog, receiver)


@postgres_only
def test_two_passes_at_once_split_the_backlog_and_never_send_a_callback_twice(backlog, receiver):
    """Two passes of four threads, in small batches, both sending at once."""
    two_passes = [lambda: delivery.send_due(concurrency=4, batch_size=8)] * 2

    attempted = passes_holding(receiver, 8, *two_passes)

    assert min(attempted) > 0  # each pass sent some
    assert sum(attempted) == len(backlog)
    assert_sent_and_recorded_once(backlog, receiver)


def passes_holding(receiver, in_flight: int, *passes) -> list:
    """Run `passes` in threads of their own; once the endpoint holds `in_flight` POSTs at once,
    let them go; what each pass answered."""
    answered = []

    def run(one_pass):
        try:
            answered.append(one_pass())
        finally:
            connection.close()  # each pass's thread has a connection of its own

    threads = [threading.Thread(target=run, args=(one_pass,)) for one_pass in passes]
    for thread in threads:
        thread.start()
    try:
        held = lambda: sum(answer == "hold" for _, answer in receiver.attempts)  # noqa: E731
        assert wait_for(lambda: held() == in_flight), f"{held()} callbacks in flight at once"
    finally:
        receiver.release.set()
        for thread in threads:
            thread.join(timeout=60)
    assert len(answered) == len(passes), "a pass failed"
    return answered


def assert_sent_and_recorded_once(backlog, receiver):
    assert Counter(c.body["request_id"] for c in receiver.received) == dict.fromkeys(backlog, 1)
    assert set(ApprovalRequest.objects.values_list("delivery_status", "delivery_attempts")) == {
        (DeliveryStatus.DELIVERED, 2)
    }
    sent = AuditEvent.objects.filter(kind=AuditEvent.Kind.CALLBACK_SENT)
    assert Counter(sent.values_list("request_id", flat=True)) == dict.fromkeys(
        map(_uuid, backlog), 1
    )


def test_a_pass_inside_a_transaction_sends_and_records_every_callback(backlog, receiver):
    from django.db import transaction

    receiver.release.set()
    with transaction.atomic():
        # Other connections cannot see this transaction's rows: only the pass's thread may use them.
        ApprovalRequest.objects.filter(pk=backlog[0]).update(title="Changed in this transaction")
        attempted = delivery.send_due(concurrency=8)

    assert attempted == len(backlog)
    assert len(receiver.received) == len(backlog)


def _uuid(value):
    import uuid

    return uuid.UUID(str(value))
