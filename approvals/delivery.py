"""The callback outbox: which callbacks are due, sending one, reading the answer, backing off.

A decision sets the request's delivery to *due* in the same transaction that stores it, so the
callback can never be lost between the two. The first attempt runs right after the commit (see
`services.decide`); `deliver_callbacks` sends whatever is still due. Whoever sends a callback
claims it first, so it goes out once however many passes and processes run at the same time.
The states and transitions are drawn in the README ("Callback delivery").
"""

import logging
import queue
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from approvals.identity import google
from approvals.models import ACTIVE_DELIVERY_STATES, ApprovalRequest, AuditEvent, DeliveryStatus
from approvals.wire import callback_body

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 3.05
# The first attempt runs inside the manager's request, so it waits less than later ones.
FIRST_ATTEMPT_READ_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 15
FIRST_RETRY_DELAY = timedelta(seconds=10)
MAX_RETRY_DELAY = timedelta(hours=1)
MAX_CLIENT_ERRORS = 5  # 400/401/403 in a row before giving up (a token or IAM grant may be late)
GIVE_UP_GRACE = timedelta(hours=1)  # after the request's expiry, the workflow has stopped waiting
# What an attempt changes of its request (`_store`).
STORED_FIELDS = [
    "delivery_status",
    "delivery_attempts",
    "delivery_client_errors",
    "delivery_last_status_code",
    "delivery_last_error",
    "delivery_next_attempt_at",
    "delivered_at",
]
# How long a claimed callback stays taken by the attempt in flight: far longer than an attempt
# can last (connecting with retries, a token refresh, the POST and google-auth's retries of a 401),
# short enough that a callback whose sender died goes out again soon.
ATTEMPT_LEASE = timedelta(minutes=10)


@dataclass(frozen=True)
class Attempt:
    """What one POST to the callback URL came back with."""

    status_code: int | None
    error: str
    duration_ms: int


def post_callback(url: str, body: dict, read_timeout: float) -> Attempt:
    started = time.monotonic()
    try:
        response = google.callback_session().post(
            url, json=body, timeout=(CONNECT_TIMEOUT_SECONDS, read_timeout)
        )
    except requests.Timeout:
        return Attempt(None, "timed out", _elapsed_ms(started))
    except requests.RequestException as error:
        return Attempt(None, f"{type(error).__name__}: {_first_line(error)}", _elapsed_ms(started))
    except Exception as error:
        logger.exception("Callback could not be sent")
        return Attempt(None, f"{type(error).__name__}: {_first_line(error)}", _elapsed_ms(started))
    error = "" if response.ok else f"HTTP {response.status_code}: {response.text[:200]}"
    return Attempt(response.status_code, error, _elapsed_ms(started))


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or [""])[0][:300]


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff with jitter: about 10 s, 20 s, 40 s ... at most an hour."""
    ceiling = min(MAX_RETRY_DELAY, FIRST_RETRY_DELAY * (2 ** max(0, attempts - 1)))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


def next_state(approval: ApprovalRequest, attempt: Attempt, now: datetime):
    """The delivery state an attempt leads to: (status, next attempt time or None).

    `approval.delivery_client_errors` already counts this attempt's 400/401/403, if it was one.
    """
    code = attempt.status_code
    if code is not None and 200 <= code < 300:
        return DeliveryStatus.DELIVERED, None
    if code in (404, 410):
        return DeliveryStatus.GONE, None
    if (
        code is not None
        and 400 <= code < 500
        and code != 429
        and approval.delivery_client_errors >= MAX_CLIENT_ERRORS
    ):
        return DeliveryStatus.FAILED, None
    if now > approval.expires_at + GIVE_UP_GRACE:
        return DeliveryStatus.FAILED, None
    return DeliveryStatus.RETRYING, now + retry_delay(approval.delivery_attempts)


def send(request_id, read_timeout: float | None = None) -> str | None:
    """Deliver one request's callback if it is due and nobody else is sending it; return the new
    delivery state, or None when there was nothing for this caller to send.

    Claiming and recording are two short transactions, and the callback is sent between them,
    outside any: a transaction held across the HTTP call would block every other writer on SQLite
    (its lock covers the whole database). The claim stops any other pass or process from sending
    the same callback meanwhile (`claim_due`).
    """
    claim = claim_due(request_id)
    if claim is None:
        return None
    approval = ApprovalRequest.objects.get(pk=request_id)
    attempt = post_callback(
        approval.callback_url, callback_body(approval), read_timeout or READ_TIMEOUT_SECONDS
    )
    return record(request_id, claim, attempt)


def claim_due(request_id) -> datetime | None:
    """Take a due callback for one attempt; return the claim, or None if it is not due.

    The claim moves the next attempt ATTEMPT_LEASE ahead, so the row is no longer due for anyone
    else while this attempt runs; it is one conditional UPDATE, which one caller wins on both
    databases (on SQLite, writers take the lock when their transaction begins: settings.py). If
    the process sending it dies, the callback is due again once the lease has run out.
    """
    now = timezone.now()
    claim = now + ATTEMPT_LEASE
    with transaction.atomic():
        won = ApprovalRequest.objects.filter(
            pk=request_id,
            delivery_status__in=ACTIVE_DELIVERY_STATES,
            delivery_next_attempt_at__lte=now,
        ).update(delivery_next_attempt_at=claim)
    return claim if won else None


def send_due(limit: int = 100, concurrency: int | None = None) -> int:
    """Send the callbacks whose next attempt is due, `concurrency` at a time (the setting
    APPROVALS_DELIVERY_CONCURRENCY by default); return how many were attempted."""
    now = timezone.now()
    due_ids = list(
        ApprovalRequest.objects.filter(
            delivery_status__in=ACTIVE_DELIVERY_STATES, delivery_next_attempt_at__lte=now
        )
        .order_by("delivery_next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    concurrency = min(concurrency or settings.APPROVALS_DELIVERY_CONCURRENCY, len(due_ids))
    # One thread inside a transaction (a caller's, a test's), whose rows other connections would
    # not see, and on SQLite, which takes one writer at a time (and whose in-memory databases
    # refuse a second thread's write instead of waiting).
    if concurrency <= 1 or connection.in_atomic_block or connection.vendor == "sqlite":
        return sum(send(request_id) is not None for request_id in due_ids)
    return _send_concurrently(due_ids, concurrency)


def _send_concurrently(due_ids: list, concurrency: int) -> int:
    """Send the callbacks of `due_ids` from `concurrency` threads; how many were attempted.

    Each callback is still claimed before it is sent (`send`), so the threads, like processes,
    never send one twice. They share the process's one callback session: its connection pool
    (urllib3) is thread-safe, and two threads refreshing its token at once fetch it twice at
    worst (google-auth-library-python#1780).
    """
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for request_id in due_ids:
        todo.put(request_id)
    attempted = [0] * concurrency
    errors: list[Exception] = []

    def work(number: int) -> None:
        try:
            while not errors:
                try:
                    request_id = todo.get_nowait()
                except queue.Empty:
                    return
                if send(request_id) is not None:
                    attempted[number] += 1
        except Exception as error:  # noqa: BLE001 - raised again below, in the pass's thread
            errors.append(error)
        finally:
            connection.close()  # each thread has a database connection of its own

    threads = [threading.Thread(target=work, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        # As one at a time would: the pass fails; what was claimed is due again after its lease.
        raise errors[0]
    return sum(attempted)


def record(request_id, claim: datetime, attempt: Attempt) -> str | None:
    """Store what an attempt came back with, with its audit event; return the new state.

    Only the holder of the claim records (None otherwise): its lease outlasts any attempt, so
    losing it means the process stalled for longer than that, and the later attempt's record wins.
    """
    with transaction.atomic():
        approval = (
            ApprovalRequest.objects.select_for_update()
            .filter(
                pk=request_id,
                delivery_status__in=ACTIVE_DELIVERY_STATES,
                delivery_next_attempt_at=claim,
            )
            .first()
        )
        if approval is None:
            logger.warning(
                "Callback attempt for request %s ended after its claim ran out; not recorded",
                request_id,
                extra={"json_fields": {"request_id": str(request_id)}},
            )
            return None
        return _store(approval, attempt)


def _store(approval: ApprovalRequest, attempt: Attempt) -> str:
    now = timezone.now()
    approval.delivery_attempts += 1
    code = attempt.status_code
    if code is not None and 400 <= code < 500 and code not in (404, 410, 429):
        approval.delivery_client_errors += 1
    else:
        approval.delivery_client_errors = 0
    status, next_at = next_state(approval, attempt, now)
    approval.delivery_status = status
    approval.delivery_last_status_code = attempt.status_code
    approval.delivery_last_error = attempt.error
    approval.delivery_next_attempt_at = next_at
    if status == DeliveryStatus.DELIVERED:
        approval.delivered_at = now
    approval.save(update_fields=STORED_FIELDS)
    AuditEvent.objects.create(
        request=approval,
        kind=(
            AuditEvent.Kind.CALLBACK_SENT
            if status == DeliveryStatus.DELIVERED
            else AuditEvent.Kind.CALLBACK_FAILED
        ),
        actor="system",
        at=now,
        payload={
            "attempt": approval.delivery_attempts,
            "status_code": attempt.status_code,
            "error": attempt.error,
            "duration_ms": attempt.duration_ms,
            "delivery_status": status,
        },
    )
    _log(approval, attempt, status)
    return status


def _log(approval: ApprovalRequest, attempt: Attempt, status: str) -> None:
    log = logger.error if status == DeliveryStatus.FAILED else logger.info
    log(
        "Callback attempt %s for request %s: %s (%s)",
        approval.delivery_attempts,
        approval.pk,
        status,
        attempt.error or attempt.status_code,
        extra={
            "json_fields": {
                "request_id": str(approval.pk),
                "attempt": approval.delivery_attempts,
                "status_code": attempt.status_code,
                "delivery_status": status,
                "duration_ms": attempt.duration_ms,
            }
        },
    )
