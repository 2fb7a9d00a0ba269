"""`make bench` (and `make bench-smoke`): the benchmarks of issue 8, in one driver.

The driver starts the local stand-ins (Google's certs, the metadata server, the Workflows
callback endpoint) in this process, a fresh PostgreSQL database `approver_bench`, and gunicorn
with the production config; the load comes from `bench/load.py` in a process of its own. It
prints a table and, in full mode, writes `docs/benchmarks.md`.
"""

import argparse
import datetime
import json
import logging
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from standins.google import CertsServer, MetadataServer, SigningKey, TokenMinter
from standins.http import free_port
from standins.workflows import CallbackReceiver

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DB_NAME = "approver_bench"
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
INVOKER = "workflow@demo-project.iam.gserviceaccount.com"
GOAL_RATIO = 0.6

# Figures of earlier runs and profiles (issue 8, item 7), quoted by the report as such: facts
# recorded then, not measured by `make bench` now.
HISTORY = {
    "before": {
        "run": "2026-11-27 00:50 UTC, commit 7068364",
        "api_rps": 50.2,
        "baseline_rps": 482.8,
        "ratio": 0.10,
        "ratio_nobody_to_notify": 0.14,
        "profile_commit": "53ab2cc",
        "queries": 14,
        "ms": 15.3,
        "baseline_ms": 1.25,
    },
    "after": {"queries": 4, "ms": 2.7, "ms_range": (2.5, 3.1), "baseline_ms": (1.2, 1.5)},
    # In process, 1,000 calls each, this machine.
    "costs_ms": {
        "one ORM insert in autocommit (what the baseline does)": 0.71,
        "the registration's two inserts in one transaction (the request and its `registered` "
        "audit event, which the product promises in the same transaction)": 1.30,
        "the ID-token verification (google-auth against cached certs)": 0.13,
        "validation": 0.05,
    },
    # The inbox's first page at 100,000 pending requests / at 100, in process: the latest
    # earlier run first, then the one before it.
    "inbox_growth": [3.86, 1.6],
}

FULL = {
    "warmup": 3.0,
    "rounds": 3,
    "seconds": 10.0,
    "threads": 8,
    "callbacks": 1000,
    "http_decisions": 200,
    "inbox_rows": [100, 100_000],
    "inbox_repeats": 5,
}
SMOKE = {
    "warmup": 1.0,
    "rounds": 1,
    "seconds": 2.0,
    "threads": 4,
    "callbacks": 50,
    "http_decisions": 20,
    "inbox_rows": [100, 2_000],
    "inbox_repeats": 1,
}


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the machine ----------------------------------------------------------------------------


def machine(pg_version):
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "memory": memory,
        "python": platform.python_version(),
        "postgresql": pg_version,
        "os": platform.platform(),
    }


# --- database -------------------------------------------------------------------------------


def fresh_database(name=DB_NAME):
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
        return connection.execute("SHOW server_version").fetchone()[0]


# --- gunicorn -------------------------------------------------------------------------------


def start_gunicorn(port, log_file):
    process = subprocess.Popen(  # noqa: S603 - our own command line
        [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py"],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see {log_file.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/openapi.json", timeout=2):
                return process
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    stop_gunicorn(process)
    raise RuntimeError(f"gunicorn did not answer within 30 s; see {log_file.name}")


def stop_gunicorn(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def worker_pids(master_pid):
    try:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    except OSError:
        return []
    return [int(pid) for pid in children]


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


# --- load -----------------------------------------------------------------------------------


def run_load(port, path, token, callback_prefix, seconds, threads):
    command = [
        sys.executable,
        "-m",
        "bench.load",
        "--port",
        str(port),
        "--path",
        path,
        "--callback-prefix",
        callback_prefix,
        "--seconds",
        str(seconds),
        "--threads",
        str(threads),
    ]
    if token:
        command += ["--token", token]
    done = subprocess.run(  # noqa: S603 - our own command line
        command, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(values):
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def percentile(sorted_values, share):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(share * (len(sorted_values) - 1))))
    return sorted_values[index]


# --- the benchmarks -------------------------------------------------------------------------


def load_rounds(config, port, endpoints, prefix, label=""):
    """Alternate the endpoints for `rounds` rounds; the medians per endpoint."""
    rounds = {name: [] for name in endpoints}
    for number in range(config["rounds"]):
        for name, (path, bearer) in endpoints.items():
            result = run_load(port, path, bearer, prefix, config["seconds"], config["threads"])
            log(
                f"{label}round {number + 1} {name}: {result['rps']:.0f} req/s, "
                f"p50 {fmt(result['p50_ms'])} ms, p99 {fmt(result['p99_ms'])} ms, "
                f"errors {result['errors']} {result['statuses']}"
            )
            rounds[name].append(result)
    summary = {}
    for name, results in rounds.items():
        summary[name] = {
            "rps": median([r["rps"] for r in results]),
            "p50_ms": median([r["p50_ms"] for r in results]),
            "p99_ms": median([r["p99_ms"] for r in results]),
            "ok": sum(r["ok"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "rounds": [round(r["rps"], 1) for r in results],
        }
    summary["ratio"] = summary["api"]["rps"] / summary["baseline"]["rps"]
    return summary


def registration(config, port, token, receiver, certs, metadata):

    prefix = (
        f"{receiver.base_url}/v1/projects/demo-project/locations/us-central1"
        f"/workflows/bench/executions/"
    )
    endpoints = {"baseline": ("/bench/baseline", ""), "api": ("/api/approvals", token)}
    certs_before, tokens_before = certs.fetches, metadata.token_fetches
    log(f"warm-up, {config['warmup']} s per endpoint")
    for path, bearer in endpoints.values():
        run_load(port, path, bearer, prefix, config["warmup"], config["threads"])
    summary = load_rounds(config, port, endpoints, prefix)
    summary["certs_fetches"] = certs.fetches - certs_before
    summary["token_fetches"] = metadata.token_fetches - tokens_before
    summary["registrations"] = summary["api"]["ok"]
    summary["notices"] = first_notices()
    return summary


def first_notices():
    """The e-mail work registration no longer does: the first notices of everything registered
    above, sent by the `send_notifications` pass in this process (one decider; Django's dummy
    mail backend, so rendering and recording, not SMTP)."""
    from approvals import reminders

    started = time.perf_counter()
    sent = 0
    while batch := reminders.send_due_notices():
        sent += batch
    seconds = time.perf_counter() - started
    return {"requests": sent, "seconds": seconds, "per_s": sent / seconds if seconds else None}


def callbacks(config, receiver, metadata, arrivals):
    """Decide `callbacks` requests through the app's service in this process; each decision
    sends its callback right after the commit (what the decision POST does), to the receiver."""

    from approvals import delivery, services

    user = make_approver("bench-callbacks", "decider@example.com")

    # Time the callback's own round trip by wrapping the one function that makes it.
    round_trips = {}
    original = delivery.post_callback

    def timed_post_callback(url, body, read_timeout):
        started = time.perf_counter()
        attempt = original(url, body, read_timeout)
        round_trips[url] = time.perf_counter() - started
        return attempt

    delivery.post_callback = timed_post_callback
    rows = pending_with_callbacks(receiver, "cb", config["callbacks"])
    tokens_before = metadata.token_fetches
    latencies, outside = [], []
    try:
        for row in rows:
            path = row.callback_url.removeprefix(receiver.base_url)
            started = time.perf_counter()
            services.decide(row.pk, user, "approved", "bench")
            arrived = arrivals.get(path)
            if arrived is None:
                continue
            total = arrived - started
            latencies.append(total * 1000)
            trip = round_trips.get(row.callback_url)
            if trip is not None and total > 0:
                outside.append(max(0.0, (total - trip) / total))
    finally:
        delivery.post_callback = original
    latencies.sort()
    return {
        "decisions": len(rows),
        "delivered": len(latencies),
        "token_fetches": metadata.token_fetches - tokens_before,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "outside_share": median(outside),
    }


# --- signed in over HTTP --------------------------------------------------------------------

TBODY = re.compile(r"<tbody[^>]*>(.*?)</tbody>", re.DOTALL)
TABLE_ROW = re.compile(r"<tr[\s>]")
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def rows_shown(html):
    """The table rows a page lists (`<tr>` inside `<tbody>`): 25 on a full inbox page."""
    return sum(len(TABLE_ROW.findall(body)) for body in TBODY.findall(html))


class SignedIn:
    """A `requests.Session` to gunicorn, signed in as `user` through a database session (what
    the sign-in form would leave behind), without the sign-in form's password round."""

    def __init__(self, user, port):
        from importlib import import_module

        import requests
        from django.conf import settings
        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

        store = import_module(settings.SESSION_ENGINE).SessionStore()
        store[SESSION_KEY] = user._meta.pk.value_to_string(user)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.save()
        self.base_url = f"http://127.0.0.1:{port}"
        self.csrf_cookie = settings.CSRF_COOKIE_NAME
        self.http = requests.Session()
        # Set without the Secure flag: the bench talks plain http to gunicorn, while the
        # production settings mark both cookies Secure (which requests would then not send).
        self.http.cookies.set(settings.SESSION_COOKIE_NAME, store.session_key)

    def get(self, path):
        # Not followed: a redirect (the admin's answer to a page past the end) must show as one.
        return self.http.get(self.base_url + path, allow_redirects=False, timeout=30)

    def post(self, path, data):
        return self.http.post(self.base_url + path, data=data, allow_redirects=False, timeout=30)

    def keep_csrf_cookie(self, response):
        value = response.cookies.get(self.csrf_cookie)
        if value:
            self.http.cookies.set(self.csrf_cookie, value)

    def close(self):
        self.http.close()


def wait_for(arrivals, path, seconds=5.0):
    deadline = time.monotonic() + seconds
    while (arrived := arrivals.get(path)) is None and time.monotonic() < deadline:
        time.sleep(0.001)
    return arrived


def decisions_over_http(config, port, receiver, arrivals, metadata):
    """Decide `http_decisions` requests through gunicorn as a signed-in approver: open the
    request's page (its CSRF token), then time from just before the decision POST to the
    callback's arrival at the receiver (recorded in this process, the same clock), and the
    POST's own response time. One request at a time."""

    from approvals.models import ApprovalRequest, Status

    user = make_approver("bench-http-decider", "http-decider@example.com")
    # Only these rows are pending: what the registration run left would otherwise be the "next
    # waiting request" the POST redirects to (and is cancelled by the inbox benchmark anyway).
    ApprovalRequest.objects.filter(status=Status.PENDING).update(status=Status.CANCELLED)
    count = config["http_decisions"]
    rows = pending_with_callbacks(receiver, "http", count)
    client = SignedIn(user, port)
    tokens_before = metadata.token_fetches
    to_arrival, post_ms, statuses = [], [], {}
    try:
        for row in rows:
            path = row.callback_url.removeprefix(receiver.base_url)
            page = client.get(f"/approvals/{row.pk}/")
            found = CSRF_INPUT.search(page.text)
            if page.status_code != 200 or found is None:
                key = f"GET {page.status_code}"
                statuses[key] = statuses.get(key, 0) + 1
                continue
            client.keep_csrf_cookie(page)
            data = {
                "outcome": "approved",
                "comment": "bench",
                "confirmed": "on",
                "csrfmiddlewaretoken": found.group(1),
            }
            started = time.perf_counter()
            answer = client.post(f"/approvals/{row.pk}/decide", data)
            answered = time.perf_counter()
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            if answer.status_code != 302:
                continue
            post_ms.append((answered - started) * 1000)
            arrived = wait_for(arrivals, path)
            if arrived is not None:
                to_arrival.append((arrived - started) * 1000)
    finally:
        client.close()
    to_arrival.sort()
    post_ms.sort()
    return {
        "decisions": count,
        "redirected": statuses.get(302, 0),
        "delivered": len(to_arrival),
        "statuses": {str(key): value for key, value in statuses.items()},
        "token_fetches": metadata.token_fetches - tokens_before,
        "p50_ms": percentile(to_arrival, 0.5),
        "p99_ms": percentile(to_arrival, 0.99),
        "post_p50_ms": percentile(post_ms, 0.5),
        "post_p99_ms": percentile(post_ms, 0.99),
    }


def make_approver(username, email):
    """A user holding the decide permission directly, read back fresh (no cached permissions)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    users = get_user_model()
    user = users.objects.create_user(username, email=email, password=None)
    user.user_permissions.add(Permission.objects.get(codename="decide_approvalrequest"))
    return users.objects.get(pk=user.pk)


def pending_with_callbacks(receiver, label, count):
    """`count` pending requests whose callbacks go to the receiver, the oldest first."""
    from django.utils import timezone

    from approvals.models import ApprovalRequest

    now = timezone.now()
    run_id = uuid.uuid4().hex[:8]
    return ApprovalRequest.objects.bulk_create(
        ApprovalRequest(
            callback_url=receiver.callback_url(f"{label}-{run_id}-{n}"),
            title=f"{label} bench {n}",
            requester_email="requester@example.com",
            requester_key="requester@example.com",
            registered_by=INVOKER,
            created_at=now - datetime.timedelta(seconds=count - n),
            expires_at=now + datetime.timedelta(days=1),
        )
        for n in range(count)
    )


def add_pending(existing, size):
    """Pending requests number `existing` to `size`, the newest last, in batches of 5,000."""
    from django.utils import timezone

    from approvals.models import ApprovalRequest

    now = timezone.now()
    batch = []
    for n in range(existing, size):
        batch.append(
            ApprovalRequest(
                callback_url=f"http://inbox.invalid/{n}",
                title=f"Inbox bench {n}",
                requester_email="requester@example.com",
                requester_key="requester@example.com",
                registered_by=INVOKER,
                amount=n % 5000,
                currency="EUR",
                created_at=now - datetime.timedelta(seconds=size - n),
                expires_at=now + datetime.timedelta(days=7),
            )
        )
        if len(batch) == 5000:
            ApprovalRequest.objects.bulk_create(batch)
            batch = []
    if batch:
        ApprovalRequest.objects.bulk_create(batch)


def inbox(config, port=None):
    """Server time (in process, Django's test client) for the inbox's first and 50th page and
    the admin changelist of the same table, at each size; queries per page. With `port`, the
    same pages through gunicorn over HTTP too; the rows each page lists, counted in its HTML."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from approvals.models import ApprovalRequest, Status

    manager = make_approver("bench-inbox", "manager@example.com")
    admin = get_user_model().objects.create_superuser(
        "bench-admin", email="admin@example.com", password=None
    )
    # Only these rows are pending; everything the other benchmarks left is closed first.
    ApprovalRequest.objects.filter(status=Status.PENDING).update(status=Status.CANCELLED)
    manager_client, admin_client = Client(), Client()
    manager_client.force_login(manager)
    admin_client.force_login(admin)
    over_http = {}
    if port is not None:
        over_http = {"inbox": SignedIn(manager, port), "admin": SignedIn(admin, port)}
    # name: (client, session, URL, the pending requests the page needs to exist: 25 rows a page
    # in the inbox, 100 in the admin, which lists the closed requests too)
    pages = {
        "inbox page 1": (manager_client, "inbox", "/", 1),
        "inbox page 50": (manager_client, "inbox", "/?page=50", 49 * 25 + 1),
        "admin page 1": (admin_client, "admin", "/admin/approvals/approvalrequest/", 1),
        "admin page 50": (
            admin_client,
            "admin",
            "/admin/approvals/approvalrequest/?p=50",
            49 * 100 + 1,
        ),
    }
    results = {}
    existing = 0
    try:
        for size in config["inbox_rows"]:
            add_pending(existing, size)
            existing = size
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            for name, (client, who, url, needs) in pages.items():
                if size < needs:
                    continue  # no such page at this size
                times, queries, status = [], None, None
                client.get(url, HTTP_HOST="127.0.0.1")  # warm
                for _ in range(config["inbox_repeats"]):
                    with CaptureQueriesContext(connection) as captured:
                        started = time.perf_counter()
                        response = client.get(url, HTTP_HOST="127.0.0.1")
                        times.append((time.perf_counter() - started) * 1000)
                    queries, status = len(captured.captured_queries), response.status_code
                result = {
                    "ms": median(times),
                    "queries": queries,
                    "status": status,
                    "rows_in_process": rows_shown(response.content.decode()),
                    "http_ms": None,
                    "http_status": None,
                    "rows": None,
                }
                if who in over_http:
                    session = over_http[who]
                    session.get(url)  # warm
                    http_times = []
                    for _ in range(config["inbox_repeats"]):
                        started = time.perf_counter()
                        answer = session.get(url)
                        http_times.append((time.perf_counter() - started) * 1000)
                    result["http_ms"] = median(http_times)
                    result["http_status"] = answer.status_code
                    result["rows"] = rows_shown(answer.text)
                results[(name, size)] = result
                log(
                    f"{name} at {size} rows: in process {fmt(result['ms'])} ms, {queries} "
                    f"queries, HTTP {status}, {result['rows_in_process']} rows; over HTTP "
                    f"{fmt(result['http_ms'])} ms, HTTP {result['http_status']}, "
                    f"{result['rows']} rows"
                )
    finally:
        for session in over_http.values():
            session.close()
    return results


# --- report ---------------------------------------------------------------------------------


def fmt(value, digits=1):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def verdict(holds):
    return "holds" if holds else "missed"


def report(config, info, reg, memory, decisions, inbox_results, started_at):
    http_cbs, cbs = decisions
    goal_ratio = reg["ratio"] >= GOAL_RATIO
    goal_certs = reg["certs_fetches"] <= 1
    goal_tokens = cbs["token_fetches"] <= 1 and http_cbs["token_fetches"] <= 1
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/run.py`); issue 8 says what each figure is for. "
        "Medians of the rounds; every figure from the same run on the same machine, except the "
        'figures of earlier runs and profiles quoted in "Profiles, before and after (7)", which '
        "say so.",
        "",
        "## Machine and run",
        "",
        "| | |",
        "|---|---|",
        f"| date | {started_at:%Y-%m-%d %H:%M} UTC |",
        f"| CPUs (nproc) | {info['cpus']} |",
        f"| CPU model | {info['cpu']} |",
        f"| memory | {info['memory']} |",
        f"| OS | {info['os']} |",
        f"| Python | {info['python']} |",
        f"| PostgreSQL | {info['postgresql']} (local, default configuration) |",
        "| server | gunicorn with `gunicorn.conf.py` (the Dockerfile's CMD): 1 worker, "
        "64 threads |",
        f"| load | `bench/load.py`, its own process, {config['threads']} threads with keep-alive "
        f"connections; warm-up {config['warmup']:g} s per endpoint, then {config['rounds']} "
        f"rounds of {config['seconds']:g} s per endpoint, alternating |",
        "",
        "The load generator, gunicorn, PostgreSQL and the stand-ins share the machine's cores, "
        "so absolute numbers are this machine's; the ratios are the point.",
        "",
        "## Registration throughput (2)",
        "",
        "`POST /api/approvals` with a Google-style ID token (RS256, signed by a local test key, "
        "certs served by a local stand-in and verified by google-auth) against the baseline "
        "`POST /bench/baseline` (parse the JSON, insert one row through the ORM, nothing else), "
        "served by the same gunicorn. One decider exists; the e-mail to them is not part of the "
        "registration (it leaves from the `send_notifications` job, measured below).",
        "",
        "| endpoint | req/s (median) | p50 ms | p99 ms | rounds req/s | requests | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, label in (
        ("baseline", "baseline `/bench/baseline`"),
        ("api", "`POST /api/approvals`"),
    ):
        r = reg[name]
        lines.append(
            f"| {label} | {fmt(r['rps'])} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | "
            f"{', '.join(str(x) for x in r['rounds'])} | {r['ok']:,} | {r['errors']} |"
        )
    notices = reg["notices"]
    lines += [
        "",
        f"Ratio (API / baseline throughput): **{reg['ratio']:.2f}**; goal ≥ {GOAL_RATIO}: "
        f"**{verdict(goal_ratio)}**.",
        "",
        f"The first notices of those {notices['requests']:,} registrations, sent afterwards by "
        f"one `send_notifications` pass in the driver's process (one decider, Django's dummy "
        f"mail backend: rendering, signing the links and recording, no SMTP): "
        f"{fmt(notices['seconds'])} s, {fmt(notices['per_s'])} requests per second. This is the "
        "work the registration used to do inside the workflow's call (see \"Profiles, before "
        'and after").',
        "",
        "## Token and certs traffic (4)",
        "",
        "| traffic | calls | fetches | the article's approach (one per call) | goal (≤ 1 per "
        "process and cache lifetime) |",
        "|---|---|---|---|---|",
        f"| certs URL, over the registration run (1 gunicorn worker) | "
        f"{reg['registrations']:,} registrations (+ warm-up) | {reg['certs_fetches']} | "
        f"{reg['registrations']:,}+ | {verdict(goal_certs)} |",
        f"| metadata token endpoint, over the registration run | "
        f"{reg['registrations']:,} registrations | {reg['token_fetches']} | 0 (no callbacks) | "
        f"{verdict(reg['token_fetches'] <= 1)} |",
        f"| metadata token endpoint, over the decision POSTs (1 gunicorn worker) | "
        f"{http_cbs['decisions']:,} decisions, {http_cbs['delivered']:,} callbacks | "
        f"{http_cbs['token_fetches']} | {http_cbs['decisions']:,} | "
        f"{verdict(http_cbs['token_fetches'] <= 1)} |",
        f"| metadata token endpoint, over the in-process decisions (the driver) | "
        f"{cbs['decisions']:,} decisions, {cbs['delivered']:,} callbacks | "
        f"{cbs['token_fetches']} | {cbs['decisions']:,} | {verdict(cbs['token_fetches'] <= 1)} |",
        "",
        "The certs stand-in answers `Cache-Control: max-age=3600`, the metadata stand-in "
        "`expires_in: 3599`; every run here is well inside both lifetimes.",
        "",
        "## Memory (6)",
        "",
        "| process | VmRSS after the registration run |",
        "|---|---|",
    ]
    for label, kib in memory:
        lines.append(f"| {label} | {kib / 1024:.1f} MiB |")
    lines += decision_section(http_cbs, cbs)
    growth = None
    if inbox_results:
        inbox_lines, growth = inbox_section(config, inbox_results)
        lines += inbox_lines
    lines += profiles_section(reg, goal_ratio, growth)
    lines += [
        "",
        "## Not measured yet",
        "",
        "* Several gunicorn workers (`GUNICORN_WORKERS` above 1): throughput, memory, and token "
        "and certs traffic per worker.",
        "* Decisions at the same time: the decision POSTs above go one at a time; several "
        "approvers deciding at once (row locks, the worker's 64 threads) are not measured.",
        "* Bulk decisions and decisions through an e-mail's link; the inbox's other tabs and its "
        "filters (only *Waiting for me*, unfiltered, is timed).",
        "* Sending mail over SMTP (the notices above use Django's dummy backend).",
        "* The real Workflows callback endpoint, Cloud SQL and Cloud Run's network: the "
        "callbacks go to a local receiver and PostgreSQL is local.",
        "",
    ]
    return "\n".join(lines), {"ratio": goal_ratio, "certs": goal_certs, "tokens": goal_tokens}


def decision_section(http_cbs, cbs):
    outside = cbs["outside_share"]
    return [
        "",
        "## Decision to callback (5)",
        "",
        f"Through gunicorn over HTTP, the figure for item 5: {http_cbs['decisions']:,} pending "
        "requests, each decided by a signed-in approver (a database session, as the sign-in "
        "form leaves; the request's page is opened first for its CSRF token, untimed), one at a "
        "time. Timed from just before `POST /approvals/<id>/decide` (approve, confirmed) to the "
        "callback's arrival at the local receiver, which records it in the driver's process on "
        "the same clock; and the POST's own response time (a 302 to the next waiting request).",
        "",
        "| measure | p50 ms | p99 ms |",
        "|---|---|---|",
        f"| decision POST to the callback's arrival | **{fmt(http_cbs['p50_ms'], 2)}** | "
        f"**{fmt(http_cbs['p99_ms'], 2)}** |",
        f"| the decision POST's response | {fmt(http_cbs['post_p50_ms'], 2)} | "
        f"{fmt(http_cbs['post_p99_ms'], 2)} |",
        "",
        f"Callbacks arrived: {http_cbs['delivered']:,} of {http_cbs['decisions']:,} "
        f"(answers to the POSTs: "
        + ", ".join(f"{count:,} × {status}" for status, count in http_cbs["statuses"].items())
        + "). The first attempt is sent inside the POST, right after the commit, so the "
        "callback arrives before the POST answers; the response time adds the redirect's query "
        "and the answer's way back.",
        "",
        "The share of that time spent outside the callback's own round trip cannot be measured "
        "inside gunicorn without instrumenting it, so it comes from the same decision taken in "
        f"the driver's process: {cbs['decisions']:,} decisions through "
        "`approvals.services.decide` (the service the POST calls; the first attempt right after "
        "the commit, as in the POST), with the one function that sends the callback timed. "
        f"From the call to the arrival: p50 {fmt(cbs['p50_ms'], 2)} ms, p99 "
        f"{fmt(cbs['p99_ms'], 2)} ms ({cbs['delivered']:,} of {cbs['decisions']:,} arrived); "
        "share outside the callback's round trip (the decision's transaction, locking the row, "
        "recording the attempt; median): "
        f"**{fmt(outside * 100 if outside is not None else None)} %**. "
        "No goal is set for these figures.",
    ]


def inbox_section(config, inbox_results):
    sizes = config["inbox_rows"]
    names = ("inbox page 1", "inbox page 50", "admin page 1", "admin page 50")
    header, rule = "| page |", "|---|"
    for size in sizes:
        header += (
            f" {size:,} rows: in process ms (queries) | {size:,} rows: over HTTP ms | "
            f"{size:,} rows: rows shown |"
        )
        rule += "---|---|---|"
    lines = [
        "",
        "## Inbox at scale (3)",
        "",
        "Server time for the inbox's first and 50th page and the Django admin's changelist of "
        "the same table, pending requests only; the inbox is the default tab *Waiting for me* "
        "of an approver, the admin changelist is `/admin/approvals/approvalrequest/` signed in "
        "as a superuser. Two measures of each page, median of "
        f"{config['inbox_repeats']} after one warm request: in process (Django's test client "
        "against the bench database, no network; it counts the queries) and over HTTP through "
        "gunicorn (a signed-in session with `requests`; client round trip on the same machine). "
        "*Rows shown* counts the table rows (`<tr>` in `<tbody>`) in the HTML that came back "
        "over HTTP, so a fast empty page cannot pass for a fast page: 25 on a full inbox page, "
        "100 on a full admin page (the admin's changelist lists every request, closed ones "
        "too).",
        "",
        header,
        rule,
    ]
    for name in names:
        cells = []
        for size in sizes:
            r = inbox_results.get((name, size))
            if r is None:
                cells += ["—", "—", "—"]
                continue
            in_process = f"{fmt(r['ms'])} ({r['queries']})"
            if r["status"] != 200:
                in_process += f" HTTP {r['status']}"
            over_http = fmt(r["http_ms"])
            if r["http_status"] not in (200, None):
                over_http += f" HTTP {r['http_status']}"
            shown = "n/a" if r["rows"] is None else f"{r['rows']}"
            if r["rows"] != r["rows_in_process"]:
                shown += f" (in process {r['rows_in_process']})"
            cells += [in_process, over_http, shown]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    small, large = sizes[0], sizes[-1]
    inbox_small = inbox_results.get(("inbox page 1", small))
    inbox_large = inbox_results.get(("inbox page 1", large))
    admin_large = inbox_results.get(("admin page 1", large))
    growth = None
    if not (inbox_small and inbox_large and admin_large):
        return lines, growth
    full = all(
        r["rows"] == 25 and r["rows_in_process"] == 25 and r["status"] == 200
        for r in (inbox_small, inbox_large)
    )
    growth = {
        "in process": inbox_large["ms"] / inbox_small["ms"],
        "over HTTP": ratio(inbox_large["http_ms"], inbox_small["http_ms"]),
    }
    versus = {
        "in process": inbox_large["ms"] / admin_large["ms"],
        "over HTTP": ratio(inbox_large["http_ms"], admin_large["http_ms"]),
    }

    def goal(values, holds):
        return ", ".join(
            f"{how} **{fmt(value, 2)}** (**{verdict(value is not None and full and holds(value))}"
            "**)"
            for how, value in values.items()
        )

    inbox_queries = [
        r["queries"]
        for key, r in sorted(inbox_results.items(), key=lambda item: item[0][1])
        if key[0].startswith("inbox")
    ]
    steady = inbox_queries and max(inbox_queries) <= inbox_queries[0]
    lines += [
        "",
        f"Goal, inbox first page at {large:,} rows within 1.5 times its time at {small:,} rows "
        f"(ratio ≤ 1.5): {goal(growth, lambda value: value <= 1.5)}.",
        "",
        f"Goal, inbox faster than the admin changelist at {large:,} rows (inbox / admin, first "
        f"pages, < 1): {goal(versus, lambda value: value < 1)}.",
        "",
        f"Rows shown on the inbox's first page: {inbox_small['rows']} at {small:,} rows and "
        f"{inbox_large['rows']} at {large:,} rows (a full page is 25"
        + ("" if full else "; the goals count as missed when a page is not full")
        + "). Queries per inbox page (in process): "
        + ", ".join(
            f"{r['queries']} for {key[0]} at {key[1]:,} rows"
            for key, r in inbox_results.items()
            if key[0].startswith("inbox")
        )
        + f"; they must not grow with the rows: **{verdict(steady)}**.",
    ]
    return lines, growth


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def profiles_section(reg, goal_ratio, growth):
    before, after = HISTORY["before"], HISTORY["after"]
    lines = [
        "",
        "## Profiles, before and after (7)",
        "",
        "The figures in this section come from earlier runs and profiles, recorded in "
        "`bench/run.py` (`HISTORY`) and not measured again by this run, except where a line "
        "says *this run*.",
        "",
        "### Registration",
        "",
        f"**Before.** `make bench` of {before['run']}: {fmt(before['api_rps'])} req/s against "
        f"the baseline's {fmt(before['baseline_rps'])}, ratio **{before['ratio']:.2f}** "
        f"({before['ratio_nobody_to_notify']:.2f} with nobody to notify). The in-process "
        f"profile (cProfile, with `bench/profile.py`'s setup) at commit "
        f"{before['profile_commit']}: {before['queries']} queries per registration (a SELECT "
        "before the insert, BEGIN, 2 INSERTs, COMMIT, then the e-mail step after the commit: "
        "the request and its assignees again, decisions, approvers with their groups, "
        "delegations, an INSERT of the `notified` event, and two more decisions queries for the "
        f"answer); {fmt(before['ms'])} ms per registration against "
        f"{fmt(before['baseline_ms'], 2)} ms for the baseline. Two thirds of it went to the "
        "e-mail step after the commit (`notifications.notify_deciders` → "
        "`permissions.deciders`: the ORM building the approvers query, and rendering three "
        "templates per decider); the rest to the pre-check and the answer's decisions queries.",
        "",
        "**Changed.**",
        "",
        "* The first e-mail left the request, through an outbox: the registration sets "
        "`next_reminder_at` to now, and the `send_notifications` job sends the notice (retrying "
        "when nobody could be mailed).",
        "* The pre-check SELECT was dropped: the unique constraint's IntegrityError finds a "
        "repeat.",
        "* The 201 answer is built from the row, without the decisions queries.",
        "",
        f"**After.** pyinstrument (`make profile`): {after['queries']} queries per registration "
        "(BEGIN, INSERT of the request, INSERT of its audit event, COMMIT); about "
        f"{fmt(after['ms'])} ms per registration ({fmt(after['ms_range'][0])}–"
        f"{fmt(after['ms_range'][1])} ms between runs, noisy) against "
        f"{fmt(after['baseline_ms'][0])}–{fmt(after['baseline_ms'][1])} ms for the baseline, in "
        f"process. Through gunicorn, *this run*: {fmt(reg['api']['rps'])} req/s against the "
        f"baseline's {fmt(reg['baseline']['rps'])}, ratio **{reg['ratio']:.2f}** (before: "
        f"{before['ratio']:.2f}); goal ≥ {GOAL_RATIO}: **{verdict(goal_ratio)}**.",
        "",
        "**What stands in the way of 0.6.** Measured in process, 1,000 calls each, on this "
        "machine:",
        "",
        "| work | ms per call |",
        "|---|---|",
    ]
    for work, ms in HISTORY["costs_ms"].items():
        lines.append(f"| {work} | {fmt(ms, 2)} |")
    lines += [
        "",
        "The transactional audit write alone costs about as much as the whole baseline insert. "
        "Tried without effect: psycopg's server-side binding with prepared statements (within "
        "noise). Not done, and why: merging both inserts into one hand-written SQL statement, "
        "or dropping or deferring the audit row, would trade the audit log's guarantee or the "
        "ORM for a benchmark.",
        "",
        "### Inbox",
        "",
        "Earlier runs measured the first page at 100,000 pending requests at "
        + " and, in the run before, ".join(f"×{value:g}" for value in HISTORY["inbox_growth"])
        + " its time at 100 (in process; noisy). In between, the inbox query was rewritten "
        "for approval policies (issue 6).",
    ]
    if growth:
        lines[-1] += (
            " *This run*: ×"
            + ", ×".join(f"{fmt(value, 2)} {how}" for how, value in growth.items())
            + ' (see "Inbox at scale").'
        )
    return lines


# --- main -----------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a few seconds, writes no docs")
    parser.add_argument("--skip-inbox", action="store_true")
    args = parser.parse_args(argv)
    config = SMOKE if args.smoke else FULL
    started_at = datetime.datetime.now(datetime.UTC)

    key = SigningKey("bench-key")
    certs = CertsServer([key]).start()
    metadata = MetadataServer().start()
    arrivals = {}
    receiver = CallbackReceiver(
        echo=lambda received: arrivals.setdefault(received.path, time.perf_counter())
    )
    receiver.start()
    # Nothing kept in memory per callback beyond the arrival times.
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    metadata_host = f"127.0.0.1:{metadata.server_address[1]}"
    for name in (
        "GOOGLE_APPLICATION_CREDENTIALS",
        "K_SERVICE",
        "CLOUD_RUN_JOB",
        "APPROVALS_API_TOKEN",
        "APPROVALS_OIDC_AUDIENCE",
    ):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "PORT": str(port),
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": f"{PG_URL}/{DB_NAME}",
            "DJANGO_SECRET_KEY": "bench-only-secret-key-" + uuid.uuid4().hex,
            "DJANGO_DEBUG": "off",
            "DJANGO_SECURE_SSL_REDIRECT": "off",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            "APPROVALS_BASE_URL": base_url,
            "APPROVALS_ALLOWED_INVOKERS": INVOKER,
            "APPROVALS_OIDC_CERTS_URL": certs.url,
            "APPROVALS_CALLBACK_URL_PREFIXES": receiver.base_url + "/v1/",
            "APPROVALS_CALLBACK_AUTH": "google",
            "GCE_METADATA_HOST": metadata_host,
            "GCE_METADATA_IP": metadata_host,
            "GOOGLE_CLOUD_PROJECT": "demo-project",
        }
    )

    gunicorn = None
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in finally
        "w", prefix="bench-gunicorn-", suffix=".log", delete=False
    )
    try:
        log(f"fresh database {DB_NAME}")
        pg_version = fresh_database()
        import django
        from django.core.management import call_command

        django.setup()
        # The driver's own passes (notices, decisions) log a line each at INFO; the bench output
        # is for the figures. Only this process: gunicorn logs as configured.
        for name in ("approvals", "django"):
            logging.getLogger(name).setLevel(logging.WARNING)
        call_command("migrate", verbosity=0)
        # One decider, so the e-mail pass after the registrations has someone to notify.
        make_approver("bench-decider", "manager@example.com")

        log(f"gunicorn on port {port} (log: {log_file.name})")
        gunicorn = start_gunicorn(port, log_file)
        token = TokenMinter(key, audience=base_url).token(email=INVOKER)
        reg = registration(config, port, token, receiver, certs, metadata)
        memory = [
            (f"gunicorn worker (pid {pid})", rss_kib(pid)) for pid in worker_pids(gunicorn.pid)
        ]
        memory.append((f"gunicorn master (pid {gunicorn.pid})", rss_kib(gunicorn.pid)))

        log(f"{config['http_decisions']} decision POSTs through gunicorn and their callbacks")
        http_cbs = decisions_over_http(config, port, receiver, arrivals, metadata)
        log(
            f"decision POST to callback: p50 {fmt(http_cbs['p50_ms'], 2)} ms, p99 "
            f"{fmt(http_cbs['p99_ms'], 2)} ms; POST p50 {fmt(http_cbs['post_p50_ms'], 2)} ms; "
            f"{http_cbs['delivered']} of {http_cbs['decisions']} arrived {http_cbs['statuses']}"
        )
        log(f"{config['callbacks']} decisions in process and their callbacks")
        cbs = callbacks(config, receiver, metadata, arrivals)
        inbox_results = None
        if not args.skip_inbox:
            log("inbox at " + ", ".join(f"{n:,}" for n in config["inbox_rows"]) + " rows")
            inbox_results = inbox(config, port)
        stop_gunicorn(gunicorn)
        text, _goals = report(
            config,
            machine(pg_version),
            reg,
            memory,
            (http_cbs, cbs),
            inbox_results,
            started_at,
        )
        print()
        print(text)
        if not args.smoke:
            (ROOT / "docs" / "benchmarks.md").write_text(text, encoding="utf-8")
            log("wrote docs/benchmarks.md")
        failed = [reg[name]["errors"] for name in ("api", "baseline")]
        if any(failed) or reg["api"]["ok"] == 0:
            log("requests failed; see the gunicorn log")
            return 1
        if http_cbs["delivered"] != http_cbs["decisions"]:
            log(f"decision POSTs failed or no callback arrived: {http_cbs['statuses']}")
            return 1
        if inbox_results and any(
            r["status"] != 200 or r["http_status"] != 200 for r in inbox_results.values()
        ):
            log("an inbox or admin page did not answer 200; see the gunicorn log")
            return 1
        return 0
    finally:
        if gunicorn is not None:
            stop_gunicorn(gunicorn)
        from django.db import connections

        connections.close_all()
        for server in (certs, metadata, receiver):
            server.stop()
        log_file.close()


if __name__ == "__main__":
    sys.exit(main())
