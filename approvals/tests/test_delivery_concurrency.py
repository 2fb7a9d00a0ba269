"""A backlog of due callbacks drained by one pass's threads: each sent once, recorded once.

The threads run on PostgreSQL; on SQLite (one writer at a time) the pass sends from its own
thread, as the last test checks on both.
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

# Threads see only committed rows, so these tests commit (and the pass runs concurrently only
# outside a transaction: `delivery.send_due`).
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


@postgres_only
def test_a_backlog_drained_by_eight_threads_has_eight_callbacks_in_flight_at_once(
    backlog, receiver
):
    def one_pass():
        try:
            delivery.send_due(concurrency=8)
        finally:
            connection.close()  # the pass's own thread has a connection of its own

    passes = threading.Thread(target=one_pass)
    passes.start()
    try:
        held = lambda: sum(answer == "hold" for _, answer in receiver.attempts)  # noqa: E731
        assert wait_for(lambda: held() == 8), f"{held()} callbacks in flight at once"
    finally:
        receiver.release.set()
        passes.join(timeout=60)


@postgres_only
def test_a_backlog_drained_concurrently_sends_and_records_each_callback_once(backlog, receiver):
    receiver.release.set()
    attempted = 0
    while batch := delivery.send_due(limit=25, concurrency=8):
        attempted += batch

    assert attempted == len(backlog)
    assert Counter(c.body["request_id"] for c in receiver.received) == dict.fromkeys(backlog, 1)
    assert set(ApprovalRequest.objects.values_list("delivery_status", "delivery_attempts")) == {
        (DeliveryStatus.DELIVERED, 2)
    }
    sent = AuditEvent.objects.filter(kind=AuditEvent.Kind.CALLBACK_SENT)
    assert Counter(sent.values_list("request_id", flat=True)) == dict.fromkeys(
        map(_uuid, backlog), 1
    )


def test_a_pass_inside_a_transaction_sends_every_callback_from_its_own_thread(backlog, receiver):
    from django.db import transaction

    receiver.release.set()
    with transaction.atomic():
        # Other connections cannot see this transaction's rows: the pass must not hand them on.
        ApprovalRequest.objects.filter(pk=backlog[0]).update(title="Changed in this transaction")
        attempted = delivery.send_due(limit=100, concurrency=8)

    assert attempted == len(backlog)
    assert len(receiver.received) == len(backlog)


def _uuid(value):
    import uuid

    return uuid.UUID(str(value))
