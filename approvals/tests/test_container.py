"""The container's command, run as Cloud Run runs it, and the log lines it writes.

No Docker engine runs here, so the tests start the very argv of the Dockerfile's CMD from the
project root (the image's WORKDIR), with what Cloud Run gives a service's container (PORT,
K_SERVICE ...) and production settings (DEBUG and the HTTPS redirect on), against an SQLite
database of their own. They read what Cloud Logging would read: the JSON lines on stdout.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import requests
from django.conf import settings

from approvals.tests.conftest import API_TOKEN
from standins.http import free_port
from standins.workflows import CallbackReceiver

BASE_DIR = Path(settings.BASE_DIR)
VENV_BIN = Path(sys.executable).parent
PROJECT = "demo-project"
BASE_URL = "https://approver.example.run.app"
MANAGER_PASSWORD = "container-test-password-5c2e"
# Something only a request's description holds: it is shown to approvers (and e-mailed), never
# logged.
DESCRIPTION = "Taxi to the airport, receipt no. 7731-QX"
HTTPS = {"X-Forwarded-Proto": "https"}  # what Cloud Run's front end adds to every request


def dockerfile_command() -> list[str]:
    commands = [
        line[len("CMD ") :]
        for line in (BASE_DIR / "Dockerfile").read_text().splitlines()
        if line.startswith("CMD ")
    ]
    assert len(commands) == 1, "the Dockerfile should have one CMD"
    command = json.loads(commands[0])  # exec form: gunicorn itself gets SIGTERM
    assert isinstance(command, list)
    return command


def default_setting(variable: str) -> int:
    """What gunicorn.conf.py uses when the environment does not set `variable`."""
    text = (BASE_DIR / "gunicorn.conf.py").read_text()
    return int(re.search(rf'"{variable}", (\d+)\)', text).group(1))


def graceful_timeout() -> int:
    return default_setting("GUNICORN_GRACEFUL_TIMEOUT")


def cloud_run_environment(database_url: str, receiver: CallbackReceiver) -> dict:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(
            ("DJANGO_", "APPROVALS_", "DATABASE_", "GUNICORN", "PYTEST_", "K_", "CLOUD_RUN_")
        )
        and name != "GOOGLE_CLOUD_PROJECT"
    }
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        PYTHONUNBUFFERED="1",  # the Dockerfile's ENV
        # What Cloud Run sets in a service's container, and the deployment's GOOGLE_CLOUD_PROJECT.
        K_SERVICE="approver",
        K_REVISION="approver-00001-tst",
        K_CONFIGURATION="approver",
        GOOGLE_CLOUD_PROJECT=PROJECT,
        DATABASE_URL=database_url,
        DJANGO_SECRET_KEY="container-test-secret-key-0f3a9c",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        APPROVALS_BASE_URL=BASE_URL,
        APPROVALS_API_TOKEN=API_TOKEN,
        APPROVALS_CALLBACK_URL_PREFIXES=receiver.base_url + "/v1/",
        APPROVALS_CALLBACK_AUTH="none",
        DJANGO_EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        DJANGO_SUPERUSER_PASSWORD=MANAGER_PASSWORD,
    )
    return env


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
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
    return result


def log_entries(text: str) -> list[dict]:
    """Every line must be one JSON object: that is what makes it a structured log entry."""
    entries = []
    for line in text.splitlines():
        if line.strip():
            entry = json.loads(line)
            assert isinstance(entry, dict), line
            entries.append(entry)
    return entries


class Container:
    """The Dockerfile's CMD, started in the project root with a port of its own."""

    def __init__(self, env: dict, logs: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path, self.stderr_path = logs / "stdout.log", logs / "stderr.log"
        self._stdout, self._stderr = self.stdout_path.open("w"), self.stderr_path.open("w")
        self.process = subprocess.Popen(  # noqa: S603 - the Dockerfile's own command
            dockerfile_command(),
            cwd=BASE_DIR,
            env={**env, "PORT": str(self.port)},
            stdout=self._stdout,
            stderr=self._stderr,
        )
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()  # no gunicorn left running, no log file left open
            raise

    def _wait_until_serving(self, seconds=30):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the container exited {self.process.returncode}:\n{self.stderr()}")
            try:
                requests.get(self.url + "/healthz", timeout=2)
            except (requests.ConnectionError, requests.Timeout):
                # Not listening yet, or listening while the worker still boots (a busy machine).
                time.sleep(0.1)
            else:
                return
        pytest.fail(f"the container did not answer within {seconds} s:\n{self.stderr()}")

    def get(self, path, headers=(), **kwargs):
        """A GET over plain HTTP, as the container sees Cloud Run's probes."""
        return requests.get(
            self.url + path, headers=dict(headers), timeout=10, allow_redirects=False, **kwargs
        )

    def https_get(self, path, headers=(), **kwargs):
        """A GET from the Internet: Cloud Run's front end speaks https and says so."""
        return self.get(path, headers={**HTTPS, **dict(headers)}, **kwargs)

    def https_post(self, path, headers=(), **kwargs):
        return requests.post(
            self.url + path,
            headers={**HTTPS, **dict(headers)},
            timeout=10,
            allow_redirects=False,
            **kwargs,
        )

    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._stdout.close()
        self._stderr.close()


@pytest.fixture(scope="module")
def callback_endpoint():
    server = CallbackReceiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def environment(tmp_path_factory, callback_endpoint):
    """A migrated database with one approver (a superuser), and the static files' manifest."""
    folder = tmp_path_factory.mktemp("container")
    env = cloud_run_environment(f"sqlite:///{folder / 'db.sqlite3'}", callback_endpoint)
    manage(env, "migrate", "--no-input")
    # The pages link the hashed names of the production static storage, which need the manifest
    # in STATIC_ROOT (the image collects it at build time). Idempotent; other runs may share it.
    manage(env, "collectstatic", "--no-input", "--verbosity", "0")
    manage(
        env, "createsuperuser", "--no-input", "--username", "manager", "--email", "m@example.com"
    )
    return env


@pytest.fixture(scope="module")
def container(environment, tmp_path_factory):
    running = Container(environment, tmp_path_factory.mktemp("container-logs"))
    yield running
    running.stop()


def register(container, execution, endpoint, trace):
    response = container.https_post(
        "/api/approvals",
        json={
            "callback_url": endpoint.callback_url(execution),
            "title": f"Expense report {execution}",
            "requester_email": "alice@example.com",
            "amount": "64.20",
            "currency": "EUR",
            "description": DESCRIPTION,
        },
        headers={"Authorization": f"Bearer {API_TOKEN}", "X-Cloud-Trace-Context": trace},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def only(entries, **fields) -> dict:
    found = [entry for entry in entries if fields.items() <= entry.items()]
    assert len(found) == 1, f"{len(found)} lines with {fields}:\n{entries}"
    return found[0]


# --- The command ------------------------------------------------------------------------------


def test_the_command_is_gunicorn_configured_from_the_environment():
    assert dockerfile_command() == ["gunicorn", "--config", "gunicorn.conf.py"]
    assert graceful_timeout() < 10, "Cloud Run sends SIGKILL 10 s after SIGTERM"


def test_it_listens_on_port_on_all_interfaces_with_cloud_runs_defaults(container):
    log = container.stderr()
    assert f"Listening at: http://0.0.0.0:{container.port}" in log
    # gthread, with a limit on stalled reads and writes (gunicorn.conf.py)
    assert "Using worker: StallLimitedThreadWorker" in log
    assert "control socket" not in log.lower()
    workers = Path(f"/proc/{container.process.pid}/task/{container.process.pid}/children")
    assert len(workers.read_text().split()) == 1


def test_the_probes_answer_over_plain_http_whatever_the_host(container):
    for path in ("/healthz", "/readyz"):
        for host in (None, "10.8.0.3:8080"):
            response = container.get(path, headers={"Host": host} if host else {})
            assert (response.status_code, response.text) == (200, "ok\n"), (path, host)
            assert "Set-Cookie" not in response.headers


def test_pages_answer_behind_cloud_runs_https_front_end(container):
    plain = container.get("/accounts/login/")
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://127.0.0.1:{container.port}/accounts/login/"

    page = container.https_get("/accounts/login/")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "no-store" in page.headers["Cache-Control"]
    css = re.search(r'href="(/static/[^"]+\.css)"', page.text).group(1)
    stylesheet = container.https_get(css)
    assert stylesheet.status_code == 200
    # Static files (hashed names) are the one thing caches may keep, for as long as they like.
    assert "immutable" in stylesheet.headers["Cache-Control"]
    assert "no-store" not in stylesheet.headers["Cache-Control"]


def test_sigterm_stops_it_gracefully_with_exit_code_0(environment, tmp_path):
    container = Container(environment, tmp_path)
    try:
        assert container.get("/readyz").status_code == 200
        started = time.monotonic()
        container.process.send_signal(signal.SIGTERM)
        code = container.process.wait(timeout=graceful_timeout() + 5)
        elapsed = time.monotonic() - started
    finally:
        container.stop()

    assert code == 0, container.stderr()
    assert elapsed < graceful_timeout()
    assert "Handling signal: term" in container.stderr()
    with pytest.raises(requests.ConnectionError):
        requests.get(container.url + "/healthz", timeout=2)


# --- Slow clients -------------------------------------------------------------------------------

SLOW_CLIENTS = 32  # "a handful": four times the 8 threads that 9 of them used to starve
HEAD = "GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # no blank line yet
POST = (  # a sign-in that passes the CSRF checks made before its body is read, and the
    # start of a body much longer than what follows
    "POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Proto: https\r\n"
    f"Origin: https://127.0.0.1\r\nCookie: csrftoken={'a' * 32}\r\n"
    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
    "username="
)


@pytest.fixture
def own_container(environment, tmp_path):
    """A container of the test's own, whose log lines and threads no other test shares."""
    running = Container(environment, tmp_path)
    yield running
    running.stop()


@contextmanager
def slow_clients(container, count=SLOW_CLIENTS):
    """`count` connections that never finish their request while the block runs.

    Half are stuck in their headers, half in a sign-in's body. A thread adds one byte to each
    of them every second, so that they are slow, not silent: no stall limit frees their threads.
    """
    sockets = []
    for number in range(count):
        sock = socket.create_connection(("127.0.0.1", container.port), timeout=5)
        sock.sendall((HEAD if number % 2 else POST).encode())
        sockets.append(sock)
    done = threading.Event()

    def dribble():
        while not done.wait(1):
            for sock in sockets:
                # A socket the server closed raises; the asserts say whether that mattered.
                with suppress(OSError):
                    sock.send(b"x")

    dribbler = threading.Thread(target=dribble, daemon=True)
    dribbler.start()
    time.sleep(1)  # let gunicorn take them all in before the test asks
    try:
        yield sockets
    finally:
        done.set()
        dribbler.join()
        for sock in sockets:
            sock.close()


def test_a_handful_of_slow_clients_cannot_starve_the_probes_or_the_pages(own_container):
    with slow_clients(own_container):
        probe = requests.get(own_container.url + "/healthz", timeout=5)
        page = own_container.https_get("/accounts/login/")
        refused = own_container.https_post("/api/approvals", json={})
    assert (probe.status_code, probe.text) == (200, "ok\n")
    assert page.status_code == 200
    assert refused.status_code == 401


@pytest.mark.parametrize("start", [HEAD, POST], ids=["in its headers", "in its body"])
def test_a_client_that_stalls_mid_request_loses_its_connection(own_container, start):
    stall_limit = default_setting("GUNICORN_CLIENT_TIMEOUT")
    with socket.create_connection(("127.0.0.1", own_container.port)) as sock:
        sock.sendall(start.encode())
        sock.settimeout(stall_limit + 10)  # generous: the test asks only that it ends
        answer = b""
        while chunk := sock.recv(4096):  # until gunicorn closes the connection
            answer += chunk
    # Cut off in its body, the sign-in is refused by the CSRF check that could not read it.
    assert answer == b"" or answer.startswith(b"HTTP/1.1 403 "), answer
    assert own_container.get("/healthz").status_code == 200
    assert "Traceback" not in own_container.stderr()  # a stalled client is not an error


# --- What it logs -------------------------------------------------------------------------------

TRACE_ID = "105445aa7843bc8bf206b12000100000"


def test_each_step_logs_one_json_line_with_the_request_id_and_the_trace(
    container, environment, callback_endpoint
):
    approved = register(container, "exec-log-1", callback_endpoint, f"{TRACE_ID}/1;o=1")
    cancelled = register(container, "exec-log-2", callback_endpoint, "2" * 32 + "/7;o=0")
    cancel = container.https_post(
        f"/api/approvals/{cancelled}/cancel",
        headers={"Authorization": f"Bearer {API_TOKEN}", "X-Cloud-Trace-Context": "3" * 32},
    )
    assert cancel.status_code == 200, cancel.text
    refused = container.https_post("/api/approvals", headers={"X-Cloud-Trace-Context": "5" * 32})
    assert refused.status_code == 401
    # The decision, in a process of its own with the same environment (the page that records
    # it is tried in test_decisions.py); its callback is sent right after the commit.
    decided = manage(
        {**environment, "DECIDE_REQUEST_ID": approved},
        "shell",
        "--verbosity",
        "0",
        "-c",
        "import os; from django.contrib.auth import get_user_model; "
        "from approvals import services; "
        "services.decide(os.environ['DECIDE_REQUEST_ID'], "
        "get_user_model().objects.get(username='manager'), 'approved', 'Enjoy the trip')",
    )

    served = log_entries(container.stdout())
    registered = only(
        served, request_id=approved, message=f"Registered approval request {approved}"
    )
    assert registered["severity"] == "INFO"
    assert registered["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{TRACE_ID}"
    assert registered["logging.googleapis.com/spanId"] == "0000000000000001"
    assert registered["logging.googleapis.com/trace_sampled"] is True
    assert registered["httpRequest"]["requestMethod"] == "POST"
    assert registered["httpRequest"]["requestUrl"].endswith("/api/approvals")

    cancel_line = only(
        served, request_id=cancelled, message=f"Request {cancelled} cancelled by api-token"
    )
    assert cancel_line["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{'3' * 32}"
    # Django's own line for an answer >= 400 is written after the middleware: traced too.
    unauthorized = only(served, message="Unauthorized: /api/approvals")
    assert unauthorized["severity"] == "WARNING"
    assert unauthorized["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{'5' * 32}"
    other = only(served, request_id=cancelled, message=f"Registered approval request {cancelled}")
    assert other["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{'2' * 32}"
    assert other["logging.googleapis.com/trace_sampled"] is False

    lines = log_entries(decided.stdout)
    decision = only(lines, request_id=approved, decision="approved")
    assert decision["severity"] == "INFO"
    attempt = only(lines, request_id=approved, delivery_status="delivered")
    assert attempt["status_code"] == 200
    assert attempt["attempt"] == 1
    assert isinstance(attempt["duration_ms"], int) and attempt["duration_ms"] >= 0
    assert len(callback_endpoint.received) == 1


def test_probes_secrets_and_request_contents_never_reach_the_logs(container, callback_endpoint):
    form = container.https_get("/accounts/login/")
    csrf_cookie = form.cookies["csrftoken"]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    signed_in = container.https_post(
        "/accounts/login/",
        data={"username": "manager", "password": MANAGER_PASSWORD, "csrfmiddlewaretoken": token},
        # Secure cookies, passed by hand over the test's plain HTTP; HTTPS needs a same origin.
        headers={
            "Cookie": f"csrftoken={csrf_cookie}",
            "Origin": f"https://127.0.0.1:{container.port}",
        },
    )
    assert signed_in.status_code == 302, signed_in.text
    session = signed_in.cookies["sessionid"]
    assert container.https_get("/", headers={"Cookie": f"sessionid={session}"}).status_code == 200
    register(container, "exec-secrets", callback_endpoint, "4" * 32)
    for path in ("/healthz", "/readyz"):
        assert container.get(path).status_code == 200

    out, err = container.stdout(), container.stderr()
    entries = log_entries(out)
    assert not [
        entry
        for entry in entries
        if "healthz" in json.dumps(entry) or "readyz" in json.dumps(entry)
    ]
    for secret in (API_TOKEN, MANAGER_PASSWORD, csrf_cookie, token, session, DESCRIPTION):
        assert secret not in out and secret not in err
    # One handler: no line twice (google-cloud-logging's own diagnostic line included).
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == len(set(lines))
    assert sum("logging.googleapis.com/diagnostic" in entry for entry in entries) <= 1
