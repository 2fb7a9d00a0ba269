"""The callback outbox: which callbacks are due, sending them, reading the answers, backing off.

A decision sets the request's delivery to *due* in the same transaction that stores it, so the
callback can never be lost between the two. The first attempt runs right after the commit (see
`services.decide`); `deliver_callbacks` sends whatever is still due. Both go one way, a batch at a
time (the first attempt is a batch of one): claim the batch in one transaction, POST its callbacks
from threads that touch no database, record the answers in one transaction. Whoever sends a
callback claims it first, so it goes out once however many passes and processes run at the same
time. The states and transitions are drawn in the README ("Callback delivery").
"""

import logging
import random
import secrets
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
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
# Longer than any one attempt can last, as above; a pass's POST starts only while this much of its
# batch's lease remains (`_post_in_lease`), so no POST outlives its claim however slow the batch.
LONGEST_ATTEMPT = timedelta(minutes=2)
# A pass's batch gives each of its threads about this many callbacks: enough that a batch's two
# transactions cost little per callback, few enough that two passes at once split a backlog.
ROUNDS_PER_BATCH = 12


@dataclass(frozen=True)
class Attempt:
    """What one POST to the callback URL came back with."""

    status_code: int | None
    error: str
    duration_ms: int


def post_callback(url: str, body: dict, read_timeout: float) -> Attempt:
    """POST one callback; what came back, never an exception (a failure is an attempt too)."""
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


@dataclass(frozen=True)
class Claim:
    """The callbacks one pass took for an attempt each, and its mark on them: the value it set
    their next attempt to, which only this pass's claim holds (`claim_due`)."""

    mark: datetime
    approvals: list[ApprovalRequest]


def send(request_id, read_timeout: float | None = None) -> str | None:
    """Deliver one request's callback if it is due and nobody else is sending it; return the new
    delivery state, or None when there was nothing for this caller to send.

    The first attempt right after a decision: a batch of one, claimed and recorded as every batch
    is. It waits for whoever holds the request's row lock for a moment (the loser of a race to
    decide, a notice pass writing its audit event), where a pass would skip the row.
    """
    claim = claim_due(ApprovalRequest.objects.filter(pk=request_id), limit=1, skip_locked=False)
    if not claim.approvals:
        return None
    [approval] = claim.approvals
    body = callback_body(approval)
    attempt = post_callback(approval.callback_url, body, read_timeout or READ_TIMEOUT_SECONDS)
    return record(claim, {approval.pk: attempt}).get(approval.pk)


def send_due(concurrency: int | None = None, batch_size: int | None = None) -> int:
    """Send every callback that is due, the earliest due first, `concurrency` at a time (the
    setting APPROVALS_DELIVERY_CONCURRENCY by default); return how many were attempted.

    They go in batches (`batch_size`, by default ROUNDS_PER_BATCH for each thread), each claimed
    in one transaction and recorded in another, so the database sees a few statements a batch
    rather than several a callback. The next batch is claimed and queued behind the one in
    flight, and each is recorded while the next one's POSTs run: the threads never wait for the
    database, nor the database for the slowest POST of a batch.
    """
    concurrency = concurrency or settings.APPROVALS_DELIVERY_CONCURRENCY
    batch_size = batch_size or concurrency * ROUNDS_PER_BATCH
    attempted = 0
    with ThreadPoolExecutor(concurrency, thread_name_prefix="callback") as pool:
        try:
            claim = claim_due(ApprovalRequest.objects.all(), batch_size)
            posts = post_all(pool, claim)
            while claim.approvals:
                following = claim_due(ApprovalRequest.objects.all(), batch_size)
                following_posts = post_all(pool, following)
                answers = {request_id: post.result() for request_id, post in posts.items()}
                record(claim, {request_id: a for request_id, a in answers.items() if a})
                attempted += len(claim.approvals)
                claim, posts = following, following_posts
        except BaseException:
            # The pass fails; what is not sent yet must not go out unrecorded, and everything
            # claimed is due again after its lease.
            pool.shutdown(cancel_futures=True)
            raise
    return attempted


def claim_due(approvals: QuerySet, limit: int, *, skip_locked: bool = True) -> Claim:
    """Take up to `limit` of `approvals` whose callback is due, the earliest due first, for one
    attempt each; return them with the claim's mark.

    The claim moves their next attempt ATTEMPT_LEASE ahead, so they are no longer due for anyone
    else while the attempts run; if the process sending them dies, they are due again once the
    lease has run out. The due rows are listed and claimed in one transaction, under their row
    locks on PostgreSQL and under the database's one write lock on SQLite (writers take it when
    their transaction begins: settings.py). With `skip_locked`, rows that another transaction
    holds (another pass claiming them) are left for the next batch, so two passes split a
    backlog instead of waiting for each other; without it, a row is waited for, and claimed if
    it is still due then. The conditional UPDATE lets one caller win a row either way.
    """
    now = timezone.now()
    mark = _claim_mark(now)
    with transaction.atomic():
        due = approvals.filter(
            delivery_status__in=ACTIVE_DELIVERY_STATES, delivery_next_attempt_at__lte=now
        )
        due_ids = list(
            due.select_for_update(skip_locked=skip_locked)
            .order_by("delivery_next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        if not due_ids:
            return Claim(mark, [])
        due.filter(pk__in=due_ids).update(delivery_next_attempt_at=mark)
        claimed = ApprovalRequest.objects.filter(pk__in=due_ids, delivery_next_attempt_at=mark)
        # Only what the POST and its body read (`wire.callback_body`): the decisions, in one
        # more query for the batch.
        sent = claimed.only("status", "callback_url").prefetch_related("decisions")
        return Claim(mark, list(sent))


def _claim_mark(now: datetime) -> datetime:
    """The end of a new claim's lease, made this claim's own by a random part of a second: a
    pass records only rows still holding its mark, so two claims must never share one, even
    two made in the same microsecond."""
    return now + ATTEMPT_LEASE + timedelta(microseconds=secrets.randbelow(1_000_000))


def post_all(pool: ThreadPoolExecutor, claim: Claim) -> dict:
    """Queue the POSTs of the claimed callbacks on `pool`; each one's future Attempt (None: not
    sent, `_post_in_lease`) by request id.

    The bodies are built here, in the caller's thread, so the threads only speak HTTP and need no
    database connection: they are as safe on SQLite (one writer at a time, in-memory databases
    of one thread) and inside a caller's transaction as on PostgreSQL. They share the process's
    one callback session: its connection pool (urllib3) is thread-safe, and two threads
    refreshing its token at once fetch it twice at worst (google-auth-library-python#1780).
    """
    last_start = claim.mark - LONGEST_ATTEMPT
    return {
        approval.pk: pool.submit(
            _post_in_lease, approval.pk, approval.callback_url, callback_body(approval), last_start
        )
        for approval in claim.approvals
    }


def _post_in_lease(request_id, url: str, body: dict, last_start: datetime) -> Attempt | None:
    """POST one callback of a batch, or None (not sent) once it is too late to start: a batch
    waiting behind endpoints that time out could otherwise still be sending when its lease ran
    out and another pass had claimed and sent the callback too. Unrecorded, it is due again then.
    """
    if timezone.now() > last_start:
        logger.warning(
            "Callback for request %s not sent: its claim runs out too soon; due again then",
            request_id,
            extra={"json_fields": {"request_id": str(request_id)}},
        )
        return None
    return post_callback(url, body, READ_TIMEOUT_SECONDS)


def record(claim: Claim, attempts: dict) -> dict:
    """Store what each attempt (by request id) came back with, with its audit event, all in one
    transaction; return the new states by request id.

    Only the holder of the claim records: its lease outlasts any attempt, so losing it means the
    process stalled for longer than that (or an operator asked for a retry meanwhile), and the
    later attempt's record wins. The others are logged and left out.
    """
    now = timezone.now()
    with transaction.atomic():
        held = list(
            ApprovalRequest.objects.select_for_update()
            .only("expires_at", *STORED_FIELDS)  # what `_store` reads and writes
            .filter(
                pk__in=list(attempts),
                delivery_status__in=ACTIVE_DELIVERY_STATES,
                delivery_next_attempt_at=claim.mark,
            )
            .order_by("pk")  # locked in id order, as `AuditEvent.objects.append_all` does
        )
        events = [_store(approval, attempts[approval.pk], now) for approval in held]
        _save_states(held)
        AuditEvent.objects.append_all(events)
    recorded = {approval.pk for approval in held}
    for request_id in attempts:
        if request_id not in recorded:
            logger.warning(
                "Callback attempt for request %s ended after its claim ran out; not recorded",
                request_id,
                extra={"json_fields": {"request_id": str(request_id)}},
            )
    for approval in held:
        _log(approval, attempts[approval.pk], approval.delivery_status)
    return {approval.pk: approval.delivery_status for approval in held}


def _save_states(approvals: list[ApprovalRequest]) -> None:
    """Write what attempts changed of `approvals` (STORED_FIELDS): one UPDATE for each set of
    equal values, so a batch whose callbacks all went through is a single statement. (Django's
    `bulk_update`, a CASE per row and field, took longer than the batch's POSTs.)"""
    alike = defaultdict(list)
    for approval in approvals:
        alike[tuple(getattr(approval, name) for name in STORED_FIELDS)].append(approval.pk)
    for values, ids in alike.items():
        ApprovalRequest.objects.filter(pk__in=ids).update(
            **dict(zip(STORED_FIELDS, values, strict=True))
        )


def _store(approval: ApprovalRequest, attempt: Attempt, now: datetime) -> AuditEvent:
    """Set what `attempt` changes of `approval` (STORED_FIELDS), and return its audit event;
    neither is saved, so that a batch stores all of them in a few queries (`record`)."""
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
    return AuditEvent(
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
