"""Database outages: 503 with Retry-After while the database is away, recovery by itself.

The fast tests force a database error through Django's test client, in a view and in a
middleware. The real one (`pytest -m outage`) runs the app as in production (gunicorn, DEBUG off)
against a throwaway PostgreSQL cluster of its own, stops the cluster, checks what callers and
people see, starts it again and checks that the same gunicorn answers again, without a restart.
It needs PostgreSQL's server binaries (Debian's postgresql package) whatever DATABASE_URL says.
"""

import concurrent.futures
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.test import Client

from approvals.tests.conftest import API_TOKEN
from standins.http import free_port

RETRY_AFTER = "30"
FRIENDLY = "Nothing was lost"


def api_headers():
    return {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def failing_client():
    """A test client that answers with the handler500 response instead of raising."""
    return Client(raise_request_exception=False)


def assert_api_unavailable(response):
    assert response.status_code == 503, response.content
    assert response.headers["Retry-After"] == RETRY_AFTER
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert "database" in body["error"]


def assert_page_unavailable(response):
    assert response.status_code == 503, response.content
    assert response.headers["Retry-After"] == RETRY_AFTER
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "<title>Back in a moment · Approver</title>" in page
    assert FRIENDLY in page
    assert "Try again in a moment" in page
    assert '<link rel="stylesheet" href="/static/approvals/style.css">' in page
    assert "Traceback" not in page


# --- Fast: a database error forced through the test client ----------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "problem",
    [
        OperationalError("connection refused"),
        InterfaceError("connection already closed"),
        psycopg.OperationalError("consuming input failed: server closed the connection"),
    ],
    ids=["operational", "interface", "unwrapped-psycopg"],
)
def test_api_answers_503_json_when_the_database_fails_in_the_view(
    failing_client, registration_body, monkeypatch, problem
):
    def unavailable(*args, **kwargs):
        raise problem

    monkeypatch.setattr("approvals.services.register", unavailable)
    monkeypatch.setattr("approvals.api.views._find", unavailable)

    registering = failing_client.post(
        "/api/approvals",
        registration_body(),
        content_type="application/json",
        headers=api_headers(),
    )
    reading = failing_client.get(f"/api/approvals/{uuid.uuid4()}", headers=api_headers())

    assert_api_unavailable(registering)
    assert_api_unavailable(reading)


@pytest.mark.django_db
def test_page_answers_the_friendly_503_when_the_database_fails_in_the_view(
    failing_client, manager, monkeypatch
):
    failing_client.force_login(manager)

    def unavailable(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("approvals.permissions.requests_awaiting", unavailable)

    assert_page_unavailable(failing_client.get("/"))


@pytest.mark.django_db
def test_page_answers_the_friendly_503_when_the_database_fails_in_a_middleware(
    failing_client, manager, monkeypatch
):
    """The session is read by middleware (through request.user) before any view runs."""
    failing_client.force_login(manager)

    def unavailable(self, *args, **kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr("django.contrib.sessions.backends.db.SessionStore.load", unavailable)

    assert_page_unavailable(failing_client.get("/"))


@pytest.mark.django_db
def test_a_database_error_behind_another_error_is_still_an_outage(
    failing_client, manager, monkeypatch
):
    failing_client.force_login(manager)

    def unavailable(*args, **kwargs):
        try:
            raise OperationalError("terminating connection due to administrator command")
        except OperationalError as problem:
            raise RuntimeError("could not list the inbox") from problem

    monkeypatch.setattr("approvals.permissions.requests_awaiting", unavailable)

    assert_page_unavailable(failing_client.get("/"))


@pytest.mark.django_db
def test_other_failures_stay_a_500_without_retry_after(
    failing_client, manager, registration_body, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("approvals.services.register", broken)
    monkeypatch.setattr("approvals.permissions.requests_awaiting", broken)

    api = failing_client.post(
        "/api/approvals",
        registration_body(),
        content_type="application/json",
        headers=api_headers(),
    )
    assert api.status_code == 500
    assert "Retry-After" not in api.headers
    assert set(api.json()) == {"error"}

    failing_client.force_login(manager)
    page = failing_client.get("/")
    assert page.status_code == 500
    assert "Retry-After" not in page.headers
    assert "Something went wrong" in page.content.decode()


# --- Real: gunicorn against a PostgreSQL cluster that is stopped and started ----------------

BASE_DIR = Path(settings.BASE_DIR)
GUNICORN = Path(sys.executable).parent / "gunicorn"
MANAGER_PASSWORD = "outage-test-password-8a1f"
CALLBACK_PREFIX = "http://127.0.0.1:9/v1/"


def _postgres_bin_dir() -> Path:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    for directory in reversed(candidates):
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    pytest.fail(
        "The outage test needs PostgreSQL's server binaries (initdb, pg_ctl) in "
        "/usr/lib/postgresql/<version>/bin or on PATH: install Debian's postgresql package."
    )


class Cluster:
    """A throwaway PostgreSQL cluster in a temporary directory, on a port of its own.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user.
    """

    def __init__(self):
        self.bin = _postgres_bin_dir()
        self.as_owner: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="approver-pg-"))
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(
                    "The outage test runs PostgreSQL as the `postgres` user; there is none."
                )
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        self.running = False

    def _run(self, *command):
        result = subprocess.run(  # noqa: S603 - fixed commands of the test
            [*self.as_owner, *command], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            pytest.fail(f"{command[0]} failed:\n{result.stdout}\n{result.stderr}\n{log}")

    def init(self):
        flags = shlex.split("-A trust -U postgres -E UTF8 --no-sync --no-instructions")
        self._run(self.bin / "initdb", "-D", self.data, *flags)

    def start(self):
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c shared_buffers=16MB -c full_page_writes=off -c synchronous_commit=off"
        )
        self._run(
            self.bin / "pg_ctl", "start", "-D", self.data, "-l", self.log, "-w", "-o", options
        )
        self.running = True

    def stop(self, mode="fast"):
        self._run(self.bin / "pg_ctl", "stop", "-D", self.data, "-m", mode, "-w", "-t", "30")
        self.running = False

    def destroy(self):
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def query(self, sql, *params):
        with psycopg.connect(self.url, connect_timeout=5) as connection:
            return connection.execute(sql, params).fetchall()


@pytest.fixture
def cluster():
    cluster = Cluster()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def app_environment(cluster) -> dict:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "APPROVALS_", "DATABASE_", "GUNICORN", "PYTEST_"))
    }
    env.update(
        DATABASE_URL=cluster.url,
        DJANGO_SECRET_KEY="outage-test-secret-key",
        DJANGO_DEBUG="off",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        DJANGO_SECURE_SSL_REDIRECT="off",  # plain http here; Cloud Run's front end speaks https
        APPROVALS_API_TOKEN=API_TOKEN,
        APPROVALS_CALLBACK_URL_PREFIXES=CALLBACK_PREFIX,
        APPROVALS_CALLBACK_AUTH="none",
        DJANGO_SUPERUSER_PASSWORD=MANAGER_PASSWORD,
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env, *args):
    result = subprocess.run(  # noqa: S603 - fixed commands of the test
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}{result.stderr}"


class Gunicorn:
    """The production server, started as the Dockerfile starts it."""

    def __init__(self, env, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = log.open("w")
        self.process = subprocess.Popen(  # noqa: S603 - fixed commands of the test
            [
                GUNICORN,
                "approver_site.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                *shlex.split("--workers 1 --threads 4 --timeout 0"),
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_until_serving(self, seconds=30):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited {self.process.returncode}:\n{self.output()}")
            try:
                requests.get(self.url + "/accounts/login/", timeout=2)
            except (requests.ConnectionError, requests.Timeout):
                # Not listening yet, or listening but still importing the app (a loaded machine).
                time.sleep(0.1)
            else:
                return
        pytest.fail(f"gunicorn did not answer within {seconds} s:\n{self.output()}")

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # gunicorn's quick shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def app(cluster):
    env = app_environment(cluster)
    manage(env, "migrate", "--no-input")
    # The pages link the hashed names of the production static storage, which need the manifest
    # in STATIC_ROOT (as the container builds it). Idempotent; other runs may share the folder.
    manage(env, "collectstatic", "--no-input", "--verbosity", "0")
    manage(env, *shlex.split("createsuperuser --no-input --username manager --email m@example.com"))
    server = Gunicorn(env, cluster.root / "gunicorn.log")
    try:
        server.wait_until_serving()
        yield server
    finally:
        server.stop()


def callback_url(execution: str) -> str:
    return (
        f"{CALLBACK_PREFIX}projects/demo-project/locations/us-central1"
        f"/workflows/expense-approval/executions/{execution}/callbacks/approval"
    )


def registration(execution: str) -> dict:
    return {
        "callback_url": callback_url(execution),
        "title": f"Expense report {execution}",
        "requester_email": "alice@example.com",
        "amount": "120.50",
        "currency": "EUR",
    }


def login_form(app) -> tuple[str, str]:
    """The sign-in form's CSRF token and the matching cookie.

    The cookies are marked Secure (DEBUG is off), so they are passed by hand over plain HTTP.
    """
    form = requests.get(app.url + "/accounts/login/", timeout=10)
    assert form.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    return token, f"csrftoken={form.cookies['csrftoken']}"


def sign_in(app, form, password=MANAGER_PASSWORD):
    token, cookie = form
    return requests.post(
        app.url + "/accounts/login/",
        data={"username": "manager", "password": password, "csrfmiddlewaretoken": token},
        headers={"Cookie": cookie},
        allow_redirects=False,
        timeout=10,
    )


@pytest.mark.outage
def test_a_real_database_outage_answers_503_and_recovers_without_a_restart(cluster, app):
    def register(execution):
        return requests.post(
            app.url + "/api/approvals",
            json=registration(execution),
            headers=api_headers(),
            timeout=10,
        )

    def read(request_id):
        return requests.get(
            f"{app.url}/api/approvals/{request_id}", headers=api_headers(), timeout=10
        )

    def read_many(request_id, times=12):
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            return [answer.status_code for answer in pool.map(read, [request_id] * times)]

    def inbox(session_cookie):
        return requests.get(app.url + "/", headers={"Cookie": session_cookie}, timeout=10)

    registered = {}  # callback URL -> id, for every registration answered 201
    first = register("before")
    assert first.status_code == 201, first.text
    registered[callback_url("before")] = first.json()["id"]
    form = login_form(app)
    signed_in = sign_in(app, form)
    assert signed_in.status_code == 302, signed_in.text
    session = f"sessionid={signed_in.cookies['sessionid']}"
    assert inbox(session).status_code == 200
    assert read_many(first.json()["id"]) == [200] * 12  # every thread holds a connection now
    workers = app.worker_pids()

    # The database goes away.
    cluster.stop()

    during = register("during")
    assert_api_unavailable(during)
    assert_api_unavailable(read(first.json()["id"]))
    assert set(read_many(first.json()["id"], times=6)) == {503}
    assert_page_unavailable(inbox(session))  # the session is read by middleware: still a page
    login_page = requests.get(app.url + "/accounts/login/", headers={"Cookie": session}, timeout=10)
    assert_page_unavailable(login_page)
    assert "Traceback" not in login_page.text and "DEBUG" not in login_page.text
    assert_page_unavailable(sign_in(app, form))  # checking the password needs the database
    # Readiness says so; liveness does not, so Cloud Run does not restart a healthy container.
    assert requests.get(app.url + "/readyz", timeout=10).status_code == 503
    assert requests.get(app.url + "/healthz", timeout=10).status_code == 200

    # It comes back; the same gunicorn worker answers at once.
    cluster.start()

    assert requests.get(app.url + "/readyz", timeout=10).status_code == 200
    again = register("during")  # the very request refused during the outage
    assert again.status_code == 201, again.text  # 201, not 200: nothing was stored then
    registered[callback_url("during")] = again.json()["id"]
    assert read(first.json()["id"]).status_code == 200
    assert read_many(first.json()["id"]) == [200] * 12
    assert inbox(session).status_code == 200

    # A restart between two requests (a maintenance window): every thread's kept connection is
    # dead, and the health check replaces it before the request uses it.
    assert (
        cluster.query(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND pid <> pg_backend_pid()"
        )[0][0]
        >= 1
    )
    cluster.stop()
    cluster.start()
    after = register("after-restart")
    assert after.status_code == 201, after.text
    registered[callback_url("after-restart")] = after.json()["id"]
    assert read_many(first.json()["id"]) == [200] * 12
    assert inbox(session).status_code == 200

    assert app.worker_pids() == workers, "the gunicorn worker was restarted"
    assert app.process.poll() is None

    # The database holds exactly the registrations answered 201, each with its audit event.
    rows = cluster.query("SELECT callback_url, id::text FROM approvals_approvalrequest")
    assert {url: str(uuid.UUID(pk)) for url, pk in rows} == registered
    events = cluster.query(
        "SELECT request_id::text, kind FROM approvals_auditevent "
        "WHERE kind = 'registered' ORDER BY request_id"
    )
    assert sorted((str(uuid.UUID(pk)), kind) for pk, kind in events) == sorted(
        (pk, "registered") for pk in registered.values()
    )

    # Django's request logger reported each refused request once, at ERROR, with its cause.
    log = app.output()
    assert log.count("ERROR django.request: Service Unavailable: /api/approvals\n") == 1
    assert "OperationalError" in log
