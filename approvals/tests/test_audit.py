"""The audit log is append-only in the database, and its hash chain shows any tampering."""

import contextlib
import datetime
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from approvals import audit, services
from approvals.models import AuditEvent
from approvals.tests.conftest import postgres_only
from approvals.tests.test_concurrency import at_once

pytestmark = pytest.mark.django_db

BEFORE_THE_CHAIN = ("approvals", "0010_first_notice_outbox")


@contextlib.contextmanager
def triggers_off():
    """What someone who owns the tables can do: drop the triggers, write, put them back."""
    audit.remove_triggers(connection)
    try:
        yield
    finally:
        audit.install_triggers(connection)


@pytest.fixture
def story(register, manager, make_user):
    """Two requests: one registered and approved twice (three events), one cancelled (two)."""
    anna = make_user("anna")
    approved = register(assignees=["manager@example.com", "anna@example.com"], required_approvals=2)
    services.decide(approved["id"], manager, "approved", "fine by me")
    services.decide(approved["id"], anna, "approved", "")
    cancelled = register()
    services.cancel(cancelled["id"], "api-token")
    return events_of(approved["id"]), events_of(cancelled["id"])


def events_of(request_id) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(request_id=request_id).order_by("pk"))


def verify_audit() -> tuple[int, str]:
    """Run `verify_audit`; the exit status `manage.py` gives it (a CommandError's returncode)
    and what it wrote. (`manage.py` itself would close the test's database connection.)"""
    out = io.StringIO()
    try:
        call_command("verify_audit", stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


def test_each_event_is_chained_to_the_one_before_it_of_its_request(story):
    for events in story:
        links = [event.previous_hash for event in events]
        assert links == [audit.GENESIS] + [event.hash for event in events[:-1]]
        assert all(event.hash == audit.digest(event) for event in events)
    assert [e.kind for e in story[0]] == ["registered", "approved", "approved"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda pk: AuditEvent.objects.filter(pk=pk).update(actor="tampered"),
        lambda pk: AuditEvent.objects.filter(pk=pk).delete(),
        lambda pk: AuditEvent.objects.all().delete(),
        lambda pk: connection.cursor().execute(
            "UPDATE approvals_auditevent SET actor = 'tampered' WHERE id = %s", [pk]
        ),
        lambda pk: connection.cursor().execute(
            "DELETE FROM approvals_auditevent WHERE id = %s", [pk]
        ),
    ],
    ids=["queryset update", "queryset delete", "delete all", "SQL UPDATE", "SQL DELETE"],
)
def test_the_database_refuses_to_change_or_delete_an_audit_event(register, tamper):
    created = register()
    event = AuditEvent.objects.get(request_id=created["id"])

    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        tamper(event.pk)

    assert AuditEvent.objects.get(pk=event.pk).actor == event.actor


def test_a_request_never_gets_a_second_first_event(story):
    first = story[0][0]
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.create(request_id=first.request_id, kind="registered", actor="forger")


def test_audit_events_are_not_created_in_bulk(story):
    with pytest.raises(ValueError, match="one by one, or with append_all"):
        AuditEvent.objects.bulk_create([AuditEvent(request_id=story[0][0].request_id)])


def test_verify_audit_passes_an_untouched_log(story):
    status, printed = verify_audit()

    newest = AuditEvent.objects.latest("pk")
    assert status == 0, printed
    assert "Audit chain verified: 5 event(s) of 2 request(s)" in printed
    assert f"newest event {newest.pk}, hash {newest.hash}" in printed


def edit(event, **fields):
    AuditEvent.objects.filter(pk=event.pk).update(**fields)


def rehash(event, **fields):
    """Edit the event and give it the hash of its new content, as a careful forger would."""
    for name, value in fields.items():
        setattr(event, name, value)
    edit(event, hash=audit.digest(event), **fields)


FORGED = {"comment": "forged"}
AN_HOUR = datetime.timedelta(hours=1)


@pytest.mark.parametrize(
    ("tamper", "named", "reason"),
    [
        (lambda e: edit(e[1], payload=FORGED), 1, "does not match its hash"),
        (lambda e: edit(e[1], actor="someone@else"), 1, "does not match its hash"),
        (lambda e: edit(e[1], at=e[1].at - AN_HOUR), 1, "does not match its hash"),
        (lambda e: edit(e[0], kind="cancelled"), 0, "does not match its hash"),
        (lambda e: (edit(e[1], payload=FORGED), edit(e[2], actor="x")), 1, "its hash"),
        (lambda e: rehash(e[1], payload=FORGED), 2, "does not follow the event before it"),
        (lambda e: AuditEvent.objects.filter(pk=e[1].pk).delete(), 2, "does not follow"),
    ],
    ids=[
        "payload",
        "actor",
        "time",
        "kind",
        "two edits: the first one",
        "edited and rehashed",
        "removed",
    ],
)
def test_verify_audit_exits_1_naming_the_first_tampered_event(story, tamper, named, reason):
    approved, _ = story
    with triggers_off():
        tamper(approved)

    status, printed = verify_audit()

    assert status == 1
    assert f"Audit chain broken at event {approved[named].pk} of request " in printed
    assert reason in printed


def test_verify_audit_exits_1_naming_a_request_whose_events_are_all_gone(story):
    _, cancelled = story
    with triggers_off():
        AuditEvent.objects.filter(request_id=cancelled[0].request_id).delete()

    status, printed = verify_audit()

    assert status == 1
    assert f"broken at request {cancelled[0].request_id}: it has no audit events" in printed


def test_the_admin_tells_an_auditor_that_the_chain_is_verified(client, signed_in_auditor, story):
    approved, _ = story

    listed = client.get("/admin/approvals/auditevent/").content.decode()
    shown = client.get(f"/admin/approvals/auditevent/{approved[1].pk}/change/").content.decode()

    assert "Chain verified: all 5 event(s) of the 2 request(s) on this page" in listed
    assert "Chain verified: all 3 event(s) of its request" in shown
    assert approved[1].hash in shown


def test_the_admin_tells_an_auditor_where_the_chain_is_broken(client, signed_in_auditor, story):
    approved, _ = story
    with triggers_off():
        edit(approved[1], payload=FORGED)

    listed = client.get("/admin/approvals/auditevent/").content.decode()
    shown = client.get(f"/admin/approvals/auditevent/{approved[2].pk}/change/").content.decode()

    broken = f"Chain broken at event {approved[1].pk} of request {approved[1].request_id}"
    assert broken in listed and broken in shown
    assert "Chain verified" not in listed + shown


@pytest.mark.django_db(transaction=True)
def test_the_migration_chains_the_events_recorded_before_it(story):
    written = {event.pk: event.hash for events in story for event in events}
    call_command("migrate", *BEFORE_THE_CHAIN, verbosity=0)
    old = MigrationExecutor(connection).loader.project_state(BEFORE_THE_CHAIN).apps
    old.get_model("approvals", "AuditEvent").objects.create(
        request_id=story[1][0].request_id, kind="notified", actor="system", payload={}
    )

    call_command("migrate", "approvals", verbosity=0)

    status, printed = verify_audit()
    chained = dict(AuditEvent.objects.values_list("pk", "hash"))
    assert status == 0, printed
    assert len(chained) == len(written) + 1
    assert {pk: chained[pk] for pk in written} == written  # the very chain the app writes


@pytest.mark.parametrize(
    "payload",
    [
        {"whole floats": [1e20, -0.0, 2.0], "fractions": [0.1, 1e-7, -3.25]},
        {"text": "Zoë’s “trip” 🚆", "nested": {"b": [1, {"a": None}], "a": True}},
        {"big": 10**30, "empty": [{}, []], "zero": 0},
    ],
    ids=["floats", "text", "numbers and empties"],
)
def test_a_payload_reads_back_with_the_hash_it_was_written_with(register, payload):
    created = register()
    AuditEvent.objects.create(
        request_id=created["id"], kind="notified", actor="system", payload=payload
    )

    checked = audit.check(AuditEvent.objects.order_by("request_id", "pk"))

    assert checked.broken is None and checked.events == 2


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_events_written_at_once_for_one_request_form_one_chain(register):
    created = register()

    def notified(number):
        return lambda: AuditEvent.objects.create(
            request_id=created["id"], kind="notified", actor="system", payload={"n": number}
        )

    results = at_once(*(notified(n) for n in range(8)))

    assert [kind for kind, _ in results] == ["ok"] * 8, results
    checked = audit.check(AuditEvent.objects.order_by("request_id", "pk"))
    assert checked.broken is None and checked.events == 9


def appended(request_id, number, kind="notified"):
    return AuditEvent(request_id=request_id, kind=kind, actor="system", payload={"n": number})


def test_events_appended_together_join_the_end_of_each_of_their_requests_chains(story):
    approved, cancelled = story[0][0].request_id, story[1][0].request_id
    fresh = AuditEvent(request_id=approved, kind="reminded", actor="system")

    AuditEvent.objects.append_all(
        [appended(cancelled, 1), appended(approved, 2), appended(cancelled, 3)]
    )
    fresh.save()  # one at a time afterwards, after the last of them

    for request_id, before in ((approved, story[0]), (cancelled, story[1])):
        events = events_of(request_id)
        assert events[: len(before)] == before
        assert [e.previous_hash for e in events] == [audit.GENESIS] + [e.hash for e in events[:-1]]
    assert [e.payload.get("n") for e in events_of(cancelled)] == [None, None, 1, 3]
    assert events_of(approved)[-1] == fresh
    assert verify_audit()[0] == 0


def test_appending_an_event_already_stored_is_refused(story):
    with pytest.raises(ValueError, match="append-only"):
        AuditEvent.objects.append_all([story[0][0]])


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_passes_appending_to_the_same_requests_at_once_keep_every_chain_whole(register):
    ids = [register()["id"] for _ in range(3)]

    def one_pass(number):
        # Each pass names the requests in another order; the locks are taken in one.
        order = ids[number % 3 :] + ids[: number % 3]
        return lambda: AuditEvent.objects.append_all([appended(i, number) for i in order])

    results = at_once(*(one_pass(n) for n in range(6)))

    assert [kind for kind, _ in results] == ["ok"] * 6, results
    checked = audit.check(AuditEvent.objects.order_by("request_id", "pk"))
    assert checked.broken is None and checked.events == 3 + 18
