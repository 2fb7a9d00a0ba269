"""The scenarios of `make bench`: registration, callbacks, decisions over HTTP; the pages' tools.

Each takes the servers the driver (`bench/driver.py`) started and returns its figures; the
report (`bench/report.py`) turns them into words.
"""

import contextlib
import datetime
import re
import statistics
import time
import uuid

from bench.report import fmt

INVOKER = "workflow@demo-project.iam.gserviceaccount.com"


def log(message):
    """A timestamped progress line, flushed, so that a long run shows where it is."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def median(values):
    """The median of what was measured, `None` when nothing was."""
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def percentile(sorted_values, share):
    """The nearest-rank percentile of sorted figures, `None` when there are none."""
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(share * (len(sorted_values) - 1))))
    return sorted_values[index]


def load_rounds(config, port, endpoints, prefix, run_load, label=""):
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
    if "baseline" in summary:
        summary["ratio"] = summary["api"]["rps"] / summary["baseline"]["rps"]
    return summary


def callback_prefix(receiver):
    """Where the registrations' callbacks point: the receiver, as a Workflows execution."""
    return (
        f"{receiver.base_url}/v1/projects/demo-project/locations/us-central1"
        f"/workflows/bench/executions/"
    )


def registration(config, port, token, receiver, certs, metadata, run_load):
    """Registrations through gunicorn against the baseline; the certs and tokens fetched."""
    prefix = callback_prefix(receiver)
    endpoints = {"baseline": ("/bench/baseline", ""), "api": ("/api/approvals", token)}
    certs_before, tokens_before = certs.fetches, metadata.token_fetches
    log(f"warm-up, {config['warmup']} s per endpoint")
    warmup_ok = 0
    for name, (path, bearer) in endpoints.items():
        done = run_load(port, path, bearer, prefix, config["warmup"], config["threads"])
        warmup_ok += done["ok"] if name == "api" else 0
    summary = load_rounds(config, port, endpoints, prefix, run_load)
    summary["certs_fetches"] = certs.fetches - certs_before
    summary["token_fetches"] = metadata.token_fetches - tokens_before
    summary["registrations"] = summary["api"]["ok"]
    summary["warmup_ok"] = warmup_ok
    return summary


def api_rounds(config, port, token, prefix, run_load, label):
    """The registration rounds alone (after a warm-up), as `registration` runs them."""
    run_load(port, "/api/approvals", token, prefix, config["warmup"], config["threads"])
    return load_rounds(config, port, {"api": ("/api/approvals", token)}, prefix, run_load, label)


def register_some(port, token, prefix, count):
    """`count` registrations one after another: the worker's memory is read after them."""
    import http.client
    import json

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    run_id = uuid.uuid4().hex[:8]
    try:
        for n in range(count):
            body = {
                "callback_url": f"{prefix}first-{run_id}-{n}/callbacks/approval",
                "title": "Bench expense report",
                "requester_email": "requester@example.com",
            }
            connection.request("POST", "/api/approvals", json.dumps(body), headers)
            answer = connection.getresponse()
            answer.read()
            if answer.status != 201:
                raise RuntimeError(f"registration answered {answer.status}")
    finally:
        connection.close()


def callbacks(config, receiver, metadata, arrivals):
    """Decisions in this process, where the callback's own round trip can be told apart."""
    # Through the app's service, which sends the callback right after the commit (as the
    # decision POST does), to the receiver.
    from approvals import services

    user = make_approver("bench-callbacks", "decider@example.com")
    rows = pending_with_callbacks(receiver, "cb", config["callbacks"])
    tokens_before = metadata.token_fetches
    latencies, outside = [], []
    with timed_callbacks() as round_trips:
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
    latencies.sort()
    return {
        "decisions": len(rows),
        "delivered": len(latencies),
        "token_fetches": metadata.token_fetches - tokens_before,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "outside_share": median(outside),
    }


@contextlib.contextmanager
def timed_callbacks():
    """Each callback's round trip by URL, timed by wrapping the one function that makes it."""
    from approvals import delivery

    round_trips = {}
    original = delivery.post_callback

    def timed_post_callback(url, body, read_timeout):
        """The original, its duration recorded."""
        started = time.perf_counter()
        attempt = original(url, body, read_timeout)
        round_trips[url] = time.perf_counter() - started
        return attempt

    delivery.post_callback = timed_post_callback
    try:
        yield round_trips
    finally:
        delivery.post_callback = original


TBODY = re.compile(r"<tbody[^>]*>(.*?)</tbody>", re.DOTALL)
TABLE_ROW = re.compile(r"<tr[\s>]")
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def rows_shown(html):
    """The table rows a page lists (`<tr>` inside `<tbody>`): 25 on a full inbox page."""
    return sum(len(TABLE_ROW.findall(body)) for body in TBODY.findall(html))


class SignedIn:
    """A session to gunicorn signed in as `user`, without the sign-in form's password round."""

    # Signed in through a database session: what the sign-in form would leave behind.

    def __init__(self, user, port):
        """Save a database session for `user`, and send its cookie from a `requests` session."""
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
        """A GET as the browser sends it, with the session cookie."""
        # Not followed: a redirect (the admin's answer to a page past the end) must show as one.
        return self.http.get(self.base_url + path, allow_redirects=False, timeout=30)

    def post(self, path, data):
        """A form POST, not followed: its redirect is part of the answer timed."""
        return self.http.post(self.base_url + path, data=data, allow_redirects=False, timeout=30)

    def keep_csrf_cookie(self, response):
        """Keep the CSRF cookie a page set, without its Secure flag (the bench is plain http)."""
        value = response.cookies.get(self.csrf_cookie)
        if value:
            self.http.cookies.set(self.csrf_cookie, value)

    def close(self):
        """Close the connection the session kept alive."""
        self.http.close()


def wait_for(arrivals, path, seconds=5.0):
    """When the callback at `path` arrived, waiting a little: it may come after the answer."""
    deadline = time.monotonic() + seconds
    while (arrived := arrivals.get(path)) is None and time.monotonic() < deadline:
        time.sleep(0.001)
    return arrived


def decisions_over_http(config, port, receiver, arrivals, metadata):
    """Decisions as an approver takes them through gunicorn: the POST to its callback's arrival."""
    # One request at a time; the arrival is recorded in this process, on the same clock.
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
            timed = decide_over_http(client, row, statuses)
            if timed is None:
                continue
            started, answered = timed
            post_ms.append((answered - started) * 1000)
            arrived = wait_for(arrivals, row.callback_url.removeprefix(receiver.base_url))
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


def decide_over_http(client, row, statuses):
    """Open the request's page (untimed, for its CSRF token), then approve; when the POST went."""
    page = client.get(f"/approvals/{row.pk}/")
    found = CSRF_INPUT.search(page.text)
    if page.status_code != 200 or found is None:
        key = f"GET {page.status_code}"
        statuses[key] = statuses.get(key, 0) + 1
        return None
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
        return None
    return started, answered


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


def page_in_process(client, url, repeats):
    """Server time without the network, and the queries, which must not grow with the rows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries, status = [], None, None
    client.get(url, HTTP_HOST="127.0.0.1")  # warm
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url, HTTP_HOST="127.0.0.1")
            times.append((time.perf_counter() - started) * 1000)
        queries, status = len(captured.captured_queries), response.status_code
    return {
        "ms": median(times),
        "queries": queries,
        "status": status,
        "rows_in_process": rows_shown(response.content.decode()),
        "http_ms": None,
        "http_status": None,
        "rows": None,
    }
