"""The callback to the waiting workflow: its body, its token, and what each answer leads to."""

import dataclasses
import datetime
import io
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.utils import timezone

from approvals import delivery, services
from approvals.models import ApprovalRequest, AuditEvent, DeliveryStatus
from standins.http import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def path_of(created):
    return urlsplit(ApprovalRequest.objects.get(pk=created["id"]).callback_url).path


def make_due_now(created):
    ApprovalRequest.objects.filter(pk=created["id"]).update(delivery_next_attempt_at=timezone.now())


def test_the_callback_carries_the_decision_and_a_google_access_token(
    register, manager, receiver, metadata_server
):
    created = register()

    decision = services.decide(created["id"], manager, "approved", "Looks right").decision

    [callback] = receiver.received
    assert callback.path == path_of(created)
    assert callback.headers["Content-Type"] == "application/json"
    assert callback.headers["Authorization"] == f"Bearer {metadata_server.last_token()}"
    decided_at = decision.decided_at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert callback.body == {
        "request_id": created["id"],
        "decision": "approved",
        "comment": "Looks right",
        "decided_by": "manager@example.com",
        "decided_at": decided_at,
        "on_behalf_of": None,
        "decisions": [
            {
                "decided_by": "manager@example.com",
                "on_behalf_of": None,
                "decision": "approved",
                "comment": "Looks right",
                "decided_at": decided_at,
            }
        ],
        # The contract's "Richer decisions": always there, `{}` when the decision asked for none.
        "inputs": {},
    }
    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert approval.delivery_status == DeliveryStatus.DELIVERED
    assert approval.delivery_attempts == 1
    assert approval.delivered_at is not None
    event = approval.audit_events.get(kind=AuditEvent.Kind.CALLBACK_SENT)
    assert event.payload["status_code"] == 200 and event.payload["attempt"] == 1
    assert "token" not in str(event.payload).lower()


def test_one_token_fetch_serves_many_callbacks(register, manager, receiver, metadata_server):
    before = metadata_server.token_fetches
    created = [register() for _ in range(15)]

    for each in created:
        services.decide(each["id"], manager, "approved", "")

    assert len(receiver.received) == 15
    assert metadata_server.token_fetches - before == 1
    assert {c.headers["Authorization"] for c in receiver.received} == {
        f"Bearer {metadata_server.last_token()}"
    }


def test_without_google_auth_no_authorization_header_is_sent(
    register, manager, receiver, approvals_settings
):
    approvals_settings.APPROVALS_CALLBACK_AUTH = "none"
    created = register()
    services.decide(created["id"], manager, "approved", "")
    assert "Authorization" not in receiver.received[0].headers


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        (503, DeliveryStatus.RETRYING),
        (429, DeliveryStatus.RETRYING),
        (500, DeliveryStatus.RETRYING),
        (404, DeliveryStatus.GONE),
        (410, DeliveryStatus.GONE),
        (401, DeliveryStatus.RETRYING),
    ],
)
def test_each_answer_leads_to_its_delivery_state(register, manager, receiver, answer, state):
    created = register()
    # Three times: on a 401 google-auth refreshes the token and tries again, up to twice.
    receiver.answers[path_of(created)] = [answer] * 3

    services.decide(created["id"], manager, "approved", "")

    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert approval.status == "approved"  # the decision stands whatever the callback did
    assert approval.delivery_status == state
    assert approval.delivery_last_status_code == answer
    assert f"HTTP {answer}" in approval.delivery_last_error
    failed = approval.audit_events.get(kind=AuditEvent.Kind.CALLBACK_FAILED)
    assert failed.payload["status_code"] == answer
    if state == DeliveryStatus.RETRYING:
        assert approval.delivery_next_attempt_at > timezone.now()
    else:
        assert approval.delivery_next_attempt_at is None


def test_a_failed_callback_is_shown_on_the_page_and_sent_again_by_the_command(
    client, register, manager, receiver
):
    created = register()
    receiver.answers[path_of(created)] = [503]
    client.force_login(manager)

    response = client.post(
        f"/approvals/{created['id']}/decide",
        {"outcome": "approved", "confirmed": "on"},
        follow=True,
    )

    messages = " ".join(str(m) for m in response.context["messages"])
    assert "could not be told yet" in messages and "sent again automatically" in messages
    page = client.get(f"/approvals/{created['id']}/").content.decode()
    assert "callback failed" in page
    assert receiver.received == []

    make_due_now(created)
    call_command("deliver_callbacks", verbosity=0)

    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert approval.delivery_status == DeliveryStatus.DELIVERED
    assert approval.delivery_attempts == 2
    assert [c.body["decision"] for c in receiver.received] == ["approved"]
    assert "delivered" in client.get(f"/approvals/{created['id']}/").content.decode()


def test_the_command_leaves_callbacks_that_are_not_due_yet(register, manager, receiver):
    created = register()
    receiver.answers[path_of(created)] = [503]
    services.decide(created["id"], manager, "approved", "")

    call_command("deliver_callbacks", verbosity=0)

    assert receiver.received == []
    assert ApprovalRequest.objects.get(pk=created["id"]).delivery_attempts == 1


def test_the_command_never_sends_for_undecided_or_delivered_requests(register, manager, receiver):
    register()
    delivered = register()
    services.decide(delivered["id"], manager, "approved", "")

    call_command("deliver_callbacks", verbosity=0)

    assert len(receiver.received) == 1


def test_an_unreachable_endpoint_is_retried(register, manager, approvals_settings):
    dead = f"http://127.0.0.1:{free_port()}/v1/"
    approvals_settings.APPROVALS_CALLBACK_URL_PREFIXES = [dead]
    created = register(
        callback_url=dead + "projects/p/locations/l/workflows/w/executions/e/callbacks/c"
    )

    services.decide(created["id"], manager, "approved", "")

    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert approval.delivery_status == DeliveryStatus.RETRYING
    assert approval.delivery_last_status_code is None
    assert "ConnectionError" in approval.delivery_last_error


def test_repeated_client_errors_end_in_failed(register, manager, receiver):
    created = register()
    receiver.answers[path_of(created)] = [403] * delivery.MAX_CLIENT_ERRORS
    services.decide(created["id"], manager, "approved", "")

    for _ in range(delivery.MAX_CLIENT_ERRORS - 1):
        make_due_now(created)
        call_command("deliver_callbacks", verbosity=0)

    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert approval.delivery_status == DeliveryStatus.FAILED
    assert approval.delivery_attempts == delivery.MAX_CLIENT_ERRORS
    assert receiver.received == []


def test_delivery_gives_up_once_the_workflow_stopped_waiting(register, manager, receiver):
    created = register()
    receiver.answers[path_of(created)] = [503, 503]
    services.decide(created["id"], manager, "approved", "")
    ApprovalRequest.objects.filter(pk=created["id"]).update(
        expires_at=timezone.now() - delivery.GIVE_UP_GRACE - datetime.timedelta(minutes=1),
        delivery_next_attempt_at=timezone.now(),
    )

    call_command("deliver_callbacks", verbosity=0)

    assert ApprovalRequest.objects.get(pk=created["id"]).delivery_status == DeliveryStatus.FAILED


def test_backoff_grows_and_is_bounded():
    delays = [delivery.retry_delay(n) for n in range(1, 30)]
    assert delivery.FIRST_RETRY_DELAY / 2 <= delays[0] <= delivery.FIRST_RETRY_DELAY
    assert all(d <= delivery.MAX_RETRY_DELAY for d in delays)
    assert delays[-1] >= delivery.MAX_RETRY_DELAY / 2


def test_the_api_reports_the_delivery(client, register, manager, receiver):
    from approvals.tests.conftest import API_TOKEN

    created = register()
    receiver.answers[path_of(created)] = [503]
    services.decide(created["id"], manager, "rejected", "Too much")

    state = client.get(
        f"/api/approvals/{created['id']}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    ).json()

    assert state["status"] == "rejected"
    assert state["decided_by"] == "manager@example.com"
    assert state["comment"] == "Too much"
    assert state["delivery"]["status"] == "retrying"
    assert state["delivery"]["attempts"] == 1
    assert "HTTP 503" in state["delivery"]["last_error"]


def test_a_401_makes_google_auth_refresh_the_token_and_try_again(
    register, manager, receiver, metadata_server
):
    created = register()
    receiver.answers[path_of(created)] = [401]
    before = metadata_server.token_fetches

    services.decide(created["id"], manager, "approved", "")

    assert ApprovalRequest.objects.get(pk=created["id"]).delivery_status == DeliveryStatus.DELIVERED
    assert metadata_server.token_fetches - before == 2  # the first token, then a fresh one
    assert receiver.received[0].headers["Authorization"] == f"Bearer {metadata_server.last_token()}"


def test_a_failed_callback_shows_in_the_admin(client, admin_user, register, manager, receiver):
    created = register(title="Unlucky report")
    receiver.answers[path_of(created)] = [503]
    services.decide(created["id"], manager, "approved", "")
    client.force_login(admin_user)

    html = client.get("/admin/approvals/approvalrequest/").content.decode()

    assert "callback failed, will retry (HTTP 503" in html


def test_make_run_runs_the_delivery_job_beside_the_app():
    """Locally too, a callback whose first attempt failed is sent again: `make run` starts the
    delivery job in a loop next to the server, and stops it with the server."""
    dry_run = subprocess.run(
        # No "Entering/Leaving directory" lines when the suite itself runs under `make test`.
        ["make", "--dry-run", "--no-print-directory", "run"],  # noqa: S607 - make from PATH
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line.rstrip(" \\") for line in dry_run.stdout.splitlines()]
    [job] = [n for n, line in enumerate(lines) if "manage.py deliver_callbacks --loop" in line]
    assert lines[job].endswith("&"), "the job must run in the background, beside the server"
    pid = lines[job + 1].split("=$!")[0]
    [trap] = [line for line in lines if "trap 'kill" in line]
    assert f"${pid}" in trap.split("trap ")[1], "the job must stop with the server"
    assert "manage.py runserver" in lines[-1]


def test_a_claimed_callback_is_due_for_nobody_else_and_a_stale_claim_records_nothing(
    register, manager, receiver
):
    created = register()
    receiver.answers[path_of(created)] = [503]
    services.decide(created["id"], manager, "approved", "")
    make_due_now(created)
    this_one = ApprovalRequest.objects.filter(pk=created["id"])
    request_id = this_one.get().pk

    first = delivery.claim_due(this_one, limit=1)
    assert [approval.pk for approval in first.approvals] == [request_id]
    assert delivery.claim_due(this_one, limit=1).approvals == []  # taken while its attempt runs
    assert delivery.send_due() == 0

    make_due_now(created)  # the lease ran out: its sender stalled, or died
    second = delivery.claim_due(this_one, limit=1)
    assert second.mark != first.mark
    delivered = {request_id: delivery.Attempt(200, "", 5)}
    assert delivery.record(first, delivered) == {}
    assert delivery.record(second, delivered) == {request_id: DeliveryStatus.DELIVERED}
    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert (approval.delivery_status, approval.delivery_attempts) == ("delivered", 2)
    assert approval.audit_events.filter(kind=AuditEvent.Kind.CALLBACK_SENT).count() == 1


def decided_with_a_failed_first_attempt(register, manager, receiver, answers):
    """A decided request for each of `answers`, whose first callback failed (503) and whose
    second, due now, will get that answer; their ids."""
    ids = []
    for answer in answers:
        created = register()
        receiver.answers[path_of(created)] = [503, answer]
        services.decide(created["id"], manager, "approved", "")
        make_due_now(created)
        ids.append(ApprovalRequest.objects.get(pk=created["id"]).pk)
    return ids


def test_a_batch_with_mixed_answers_records_each_state_and_audit_event(
    register, manager, receiver, caplog
):
    ids = decided_with_a_failed_first_attempt(register, manager, receiver, [200, 404, 500])

    with caplog.at_level("INFO", logger="approvals.delivery"):
        assert delivery.send_due(batch_size=10) == 3

    expected = [
        (DeliveryStatus.DELIVERED, 200, AuditEvent.Kind.CALLBACK_SENT),
        (DeliveryStatus.GONE, 404, AuditEvent.Kind.CALLBACK_FAILED),
        (DeliveryStatus.RETRYING, 500, AuditEvent.Kind.CALLBACK_FAILED),
    ]
    for request_id, (state, code, kind) in zip(ids, expected, strict=True):
        approval = ApprovalRequest.objects.get(pk=request_id)
        assert (approval.delivery_status, approval.delivery_attempts) == (state, 2)
        assert approval.delivery_last_status_code == code
        assert (approval.delivered_at is not None) == (state == DeliveryStatus.DELIVERED)
        assert (approval.delivery_next_attempt_at is not None) == (state == "retrying")
        event = approval.audit_events.order_by("pk").last()
        assert event.kind == kind
        assert event.payload == {
            "attempt": 2,
            "status_code": code,
            "error": approval.delivery_last_error,
            "duration_ms": event.payload["duration_ms"],
            "delivery_status": state,
        }
        assert f"Callback attempt 2 for request {request_id}: {state}" in caplog.text
    call_command("verify_audit", stdout=io.StringIO())  # every chain still holds


def test_an_attempt_whose_claim_changed_meanwhile_is_not_recorded(
    register, manager, receiver, caplog
):
    kept, lost = decided_with_a_failed_first_attempt(register, manager, receiver, [200, 200])
    claim = delivery.claim_due(ApprovalRequest.objects.filter(pk__in=[kept, lost]), limit=10)
    assert {approval.pk for approval in claim.approvals} == {kept, lost}
    # Meanwhile its lease ran out and another pass claimed it again.
    ApprovalRequest.objects.filter(pk=lost).update(delivery_next_attempt_at=timezone.now())
    again = delivery.claim_due(ApprovalRequest.objects.filter(pk=lost), limit=1)
    events_before = AuditEvent.objects.filter(request_id=lost).count()

    answers = {kept: delivery.Attempt(200, "", 5), lost: delivery.Attempt(200, "", 5)}
    assert delivery.record(claim, answers) == {kept: DeliveryStatus.DELIVERED}

    assert "ended after its claim ran out; not recorded" in caplog.text
    approval = ApprovalRequest.objects.get(pk=lost)
    assert (approval.delivery_status, approval.delivery_attempts) == ("retrying", 1)
    assert approval.delivery_next_attempt_at == again.mark  # still the later claim's
    assert AuditEvent.objects.filter(request_id=lost).count() == events_before
    assert ApprovalRequest.objects.get(pk=kept).delivery_status == DeliveryStatus.DELIVERED


def test_a_pass_sends_batch_after_batch_from_its_threads_on_either_database(
    register, manager, receiver
):
    """The threads only speak HTTP (the pass's own thread claims and records), so SQLite too."""
    ids = decided_with_a_failed_first_attempt(register, manager, receiver, [200] * 6)

    assert delivery.send_due(concurrency=3, batch_size=2) == len(ids)

    assert {c.body["request_id"] for c in receiver.received} == {str(i) for i in ids}
    assert set(ApprovalRequest.objects.values_list("delivery_status", flat=True)) == {"delivered"}


def test_a_pass_starts_no_post_that_could_outlive_its_claim(register, manager, receiver, caplog):
    """A batch queued behind slow endpoints does not send once its lease is nearly over: another
    pass could claim and send the callback after the lease, so it is left due for then."""
    [request_id] = decided_with_a_failed_first_attempt(register, manager, receiver, [200])
    claim = delivery.claim_due(ApprovalRequest.objects.filter(pk=request_id), limit=1)
    nearly_over = timezone.now() + delivery.LONGEST_ATTEMPT - datetime.timedelta(seconds=1)

    with ThreadPoolExecutor(1) as pool:
        posts = delivery.post_all(pool, dataclasses.replace(claim, mark=nearly_over))

    assert posts[request_id].result() is None
    assert receiver.received == []
    assert "not sent: its claim runs out too soon" in caplog.text
