"""Races: one decision per request, one callback per decision.

With real threads on PostgreSQL; and with real processes (the app deciding, the delivery job)
against one database, SQLite's file or the PostgreSQL test database, as they run side by side.
"""

import datetime
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from approvals import delivery, services
from approvals.models import ApprovalRequest, Decision, DeliveryStatus, Status
from approvals.tests.conftest import API_TOKEN, postgres_only

pytestmark = pytest.mark.django_db(transaction=True)

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


@postgres_only
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
        [(_, decided)] = [r for r in results if r[0] == "ok"]
        decision = decided.decision
        assert isinstance(refused, services.DecisionRefused)
        assert f"already {decision.outcome} by {decision.decided_by}" in str(refused)
        assert Decision.objects.filter(request_id=created["id"]).count() == 1
    assert len(receiver.received) == ROUNDS
    assert len({c.body["request_id"] for c in receiver.received}) == ROUNDS


@postgres_only
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


@postgres_only
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


@postgres_only
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


@postgres_only
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


@postgres_only
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
    # Two threads each: the stand-in, in this process with a listen queue of 5 (socketserver's),
    # resets connections beyond a few dozen at once, which would be retried, not delivered.
    delivery.send_due(concurrency=2, batch_size=10)


def delivery_path(created):
    from urllib.parse import urlsplit

    return urlsplit(ApprovalRequest.objects.get(pk=created["id"]).callback_url).path


# --- Processes: the app deciding and the delivery job, side by side ----------------------------

BASE_DIR = Path(__file__).resolve().parents[2]
APP_PROCESS = ["-m", "approvals.tests.app_process"]


def app_environment(database_url: str, callback_prefix: str = "") -> dict:
    """The environment of an app process: this run's database and the callback stand-in."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "APPROVALS_", "DATABASE_"))
    }
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SECRET_KEY="tests-only-secret-key",
        APPROVALS_API_TOKEN=API_TOKEN,
        APPROVALS_CALLBACK_URL_PREFIXES=callback_prefix or "http://127.0.0.1/v1/",
        APPROVALS_CALLBACK_AUTH="none",
        PYTHONUNBUFFERED="1",
    )
    return env


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - fixed commands of the test
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wait_for(condition, seconds: float = 60) -> bool:
    """Whether `condition()` came true within `seconds` (a bound on a hang, not a timing)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A migrated SQLite database file, copied for each test that needs one."""
    path = tmp_path_factory.mktemp("sqlite") / "approver.sqlite3"
    migrated = run(app_environment(f"sqlite:///{path}"), "manage.py", "migrate", "-v0")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    return path


@pytest.fixture
def sqlite_file(migrated_sqlite, tmp_path) -> Path:
    copy = tmp_path / "approver.sqlite3"
    copy.write_bytes(migrated_sqlite.read_bytes())
    return copy


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_database(request) -> str:
    """The URL of a database the processes share: a SQLite file, or the PostgreSQL test database
    (when this run is on PostgreSQL)."""
    if request.param == "sqlite":
        return f"sqlite:///{request.getfixturevalue('sqlite_file')}"
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: this run's database is SQLite")
    db = connection.settings_dict
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def test_a_job_pass_during_the_first_attempt_sends_nothing_again_and_exits_0(
    shared_database, receiver
):
    """The first attempt runs in the deciding process and is slow (the endpoint holds its answer);
    a `deliver_callbacks` pass meanwhile must not send the callback again, nor fail."""
    env = app_environment(shared_database, receiver.base_url + "/v1/")
    url = receiver.callback_url("exec-in-flight")
    path = urlsplit(url).path
    receiver.answers[path] = ["hold", 404]  # a second POST finds the execution resumed
    deciding = subprocess.Popen(  # noqa: S603 - fixed commands of the test
        [sys.executable, *APP_PROCESS, "decide", url],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.holding.wait(timeout=60), "the first attempt never reached the endpoint"
        job = run(env, "manage.py", "deliver_callbacks")
    finally:
        receiver.release.set()
        decided, decide_errors = deciding.communicate(timeout=60)

    assert job.returncode == 0, job.stdout + job.stderr
    assert "Attempted 0 callback(s)" in job.stdout
    assert [answer for sent_to, answer in receiver.attempts if sent_to == path] == ["hold"]
    assert deciding.returncode == 0, decide_errors
    assert json.loads(decided) == {"status": "delivered", "attempts": 1}


@pytest.mark.parametrize(
    ("command", "pass_summary"),
    [("deliver_callbacks", "Attempted "), ("send_notifications", "E-mailed about ")],
)
def test_a_job_loop_survives_a_locked_database_and_goes_on(
    sqlite_file, receiver, tmp_path, command, pass_summary
):
    """Another connection holds SQLite's lock for longer than the job waits (1 s here): the
    pass fails, the loop logs it and keeps going, and its next pass after the lock works."""
    env = app_environment(f"sqlite:///{sqlite_file}?timeout=1", receiver.base_url + "/v1/")
    url = receiver.callback_url("exec-locked")
    receiver.answers[urlsplit(url).path] = [503]
    decided = run(env, *APP_PROCESS, "decide", url)
    assert json.loads(decided.stdout)["status"] == DeliveryStatus.RETRYING, decided.stderr
    assert run(env, *APP_PROCESS, "make-due", url).returncode == 0

    lock = sqlite3.connect(sqlite_file, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    log_path = tmp_path / "job.log"
    with log_path.open("w") as log:
        job = subprocess.Popen(  # noqa: S603 - fixed commands of the test
            [sys.executable, "manage.py", command, "--loop", "--pause", "0.2"],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        output = log_path.read_text
        assert wait_for(lambda: "database is locked" in output() or job.poll() is not None)
        assert job.poll() is None, f"the job died:\n{output()}"
        lock.execute("ROLLBACK")

        def a_pass_after_the_lock():
            text = output()
            return text.rfind(pass_summary) > text.rfind("database is locked")

        assert wait_for(lambda: a_pass_after_the_lock() or job.poll() is not None), output()
        assert job.poll() is None, f"the job died:\n{output()}"
        if command == "deliver_callbacks":
            assert wait_for(lambda: receiver.received), output()
            assert [c.body["decision"] for c in receiver.received] == ["approved"]
    finally:
        job.terminate()
        job.wait(timeout=30)
        lock.close()


def backlog_for(jobs: int, concurrency: int) -> int:
    """Enough due callbacks that each of `jobs` passes of `concurrency` threads gets one for every
    thread, however their claims interleave: a pass holds two batches at once
    (`delivery.send_due`)."""
    return (jobs - 1) * 2 * concurrency * delivery.ROUNDS_PER_BATCH + concurrency


def test_several_job_processes_at_once_send_each_callback_once(shared_database, receiver):
    """Three `deliver_callbacks` passes at once over a backlog that each gets some of: each
    callback goes out once. The endpoint holds the first POSTs until every pass is in the middle
    of sending one."""
    # One callback at a time per pass, so that "every pass is sending one" is three held POSTs.
    env = app_environment(shared_database, receiver.base_url + "/v1/")
    env["APPROVALS_DELIVERY_CONCURRENCY"] = "1"
    urls = [receiver.callback_url(f"exec-{n}") for n in range(backlog_for(jobs=3, concurrency=1))]
    for url in urls:
        receiver.answers[urlsplit(url).path] = [503, "hold"]  # every first attempt fails
    decided = run(env, *APP_PROCESS, "decide", *urls)
    assert decided.returncode == 0, decided.stderr
    assert run(env, *APP_PROCESS, "make-due", *urls).returncode == 0

    jobs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "deliver_callbacks"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]

    def held():
        return sum(answer == "hold" for _, answer in receiver.attempts)

    try:
        assert wait_for(lambda: held() == 3), f"{held()} passes sending at once"
    finally:
        receiver.release.set()
        outputs = [job.communicate(timeout=120)[0] for job in jobs]

    assert [job.returncode for job in jobs] == [0, 0, 0], outputs
    sent = sorted(c.path for c in receiver.received)
    assert sent == sorted(urlsplit(url).path for url in urls)
    states = run(env, *APP_PROCESS, "state", *urls).stdout.splitlines()
    assert set(states) == {json.dumps({"status": "delivered", "attempts": 2})}


def test_two_job_processes_sending_concurrently_send_each_callback_once(shared_database, receiver):
    """Two `deliver_callbacks` passes of four threads each over a backlog that each gets some of:
    each callback goes out once. The endpoint holds the first POSTs until all eight threads are
    sending one. On SQLite too: the threads only speak HTTP."""
    env = app_environment(shared_database, receiver.base_url + "/v1/")
    env["APPROVALS_DELIVERY_CONCURRENCY"] = "4"
    urls = [receiver.callback_url(f"exec-{n}") for n in range(backlog_for(jobs=2, concurrency=4))]
    for url in urls:
        receiver.answers[urlsplit(url).path] = [503, "hold"]  # every first attempt fails
    assert run(env, *APP_PROCESS, "decide", *urls).returncode == 0
    assert run(env, *APP_PROCESS, "make-due", *urls).returncode == 0

    jobs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "deliver_callbacks"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        held = lambda: sum(answer == "hold" for _, answer in receiver.attempts)  # noqa: E731
        assert wait_for(lambda: held() == 8), f"{held()} callbacks in flight at once"
    finally:
        receiver.release.set()
        outputs = [job.communicate(timeout=120)[0] for job in jobs]

    assert [job.returncode for job in jobs] == [0, 0], outputs
    sent = sorted(c.path for c in receiver.received)
    assert sent == sorted(urlsplit(url).path for url in urls)
    states = run(env, *APP_PROCESS, "state", *urls).stdout.splitlines()
    assert set(states) == {json.dumps({"status": "delivered", "attempts": 2})}


def test_a_single_pass_on_a_locked_database_exits_1_and_leaves_the_callback_due(
    sqlite_file, receiver
):
    """A Cloud Run job's one pass that cannot write says so and exits 1; nothing due is lost."""
    env = app_environment(f"sqlite:///{sqlite_file}?timeout=1", receiver.base_url + "/v1/")
    url = receiver.callback_url("exec-locked-once")
    receiver.answers[urlsplit(url).path] = [503]
    assert run(env, *APP_PROCESS, "decide", url).returncode == 0
    assert run(env, *APP_PROCESS, "make-due", url).returncode == 0

    lock = sqlite3.connect(sqlite_file, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        job = run(env, "manage.py", "deliver_callbacks")
    finally:
        lock.execute("ROLLBACK")
        lock.close()

    assert job.returncode == 1
    assert "deliver_callbacks: the pass failed" in job.stderr
    assert "database is locked" in job.stderr
    assert json.loads(run(env, *APP_PROCESS, "state", url).stdout) == {
        "status": DeliveryStatus.RETRYING,
        "attempts": 1,
    }
    again = run(env, "manage.py", "deliver_callbacks")
    assert again.returncode == 0, again.stderr
    assert [c.body["decision"] for c in receiver.received] == ["approved"]


@postgres_only
def test_several_notification_passes_at_once_tell_each_requester_once(
    register, manager, receiver, smtp
):
    """The requester's outcome mail, like a callback: taken under the row lock, sent once."""
    from approvals.notify import outcome

    created = [register(requester_email=f"req{n}@example.com") for n in range(20)]
    for each in created:
        services.decide(each["id"], manager, "approved", "")

    def drain_outcomes():
        while outcome.send_due(limit=5):
            pass

    at_once(*[drain_outcomes for _ in range(4)])

    assert sorted(address for m in smtp.messages for address in m.rcpt_tos) == sorted(
        f"req{n}@example.com" for n in range(20)
    )
    assert not ApprovalRequest.objects.filter(requester_notice_due_at__isnull=False).exists()
