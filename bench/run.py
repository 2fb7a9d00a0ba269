"""`make bench` (and `make bench-smoke`): the benchmarks of issue 8, in one driver.

The driver starts the local stand-ins (Google's certs, the metadata server, the Workflows
callback endpoint) in this process, a fresh PostgreSQL database `approver_bench`, and gunicorn
with the production config; the load comes from `bench/load.py` in a process of its own. It
prints a table and, in full mode, writes `docs/benchmarks.md`.
"""

import argparse
import datetime
import json
import os
import platform
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

from approvals.callback_receiver import CallbackReceiver
from approvals.tests.standins import (
    CertsServer,
    MetadataServer,
    SigningKey,
    TokenMinter,
    free_port,
)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DB_NAME = "approver_bench"
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
INVOKER = "workflow@demo-project.iam.gserviceaccount.com"
GOAL_RATIO = 0.6

FULL = {
    "warmup": 3.0,
    "rounds": 3,
    "seconds": 10.0,
    "threads": 8,
    "callbacks": 1000,
    "inbox_rows": [100, 100_000],
    "inbox_repeats": 5,
}
SMOKE = {
    "warmup": 1.0,
    "rounds": 1,
    "seconds": 2.0,
    "threads": 4,
    "callbacks": 50,
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


def fresh_database():
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DB_NAME}")
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
    from django.contrib.auth import get_user_model

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
    # Diagnostic: the same rounds with nobody to notify, to show what the e-mail step costs.
    get_user_model().objects.filter(username="bench-decider").update(is_active=False)
    summary["no_decider"] = load_rounds(config, port, endpoints, prefix, "nobody to notify, ")
    get_user_model().objects.filter(username="bench-decider").update(is_active=True)
    summary["certs_fetches"] = certs.fetches - certs_before
    summary["token_fetches"] = metadata.token_fetches - tokens_before
    summary["registrations"] = summary["api"]["ok"] + summary["no_decider"]["api"]["ok"]
    return summary


def callbacks(config, receiver, metadata, arrivals):
    """Decide `callbacks` requests through the app's service in this process; each decision
    sends its callback right after the commit (what the decision POST does), to the receiver."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.utils import timezone

    from approvals import delivery, services
    from approvals.models import ApprovalRequest

    user = get_user_model().objects.create_user(
        "bench-callbacks", email="decider@example.com", password=None
    )
    user.user_permissions.add(Permission.objects.get(codename="decide_approvalrequest"))
    user = get_user_model().objects.get(pk=user.pk)

    # Time the callback's own round trip by wrapping the one function that makes it.
    round_trips = {}
    original = delivery.post_callback

    def timed_post_callback(url, body, read_timeout):
        started = time.perf_counter()
        attempt = original(url, body, read_timeout)
        round_trips[url] = time.perf_counter() - started
        return attempt

    delivery.post_callback = timed_post_callback
    now = timezone.now()
    run_id = uuid.uuid4().hex[:8]
    rows = ApprovalRequest.objects.bulk_create(
        ApprovalRequest(
            callback_url=receiver.callback_url(f"cb-{run_id}-{n}"),
            title=f"Callback bench {n}",
            requester_email="requester@example.com",
            registered_by=INVOKER,
            created_at=now,
            expires_at=now + datetime.timedelta(days=1),
        )
        for n in range(config["callbacks"])
    )
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


def inbox(config):
    """Server time (in process, Django's test client) for the inbox's first and 50th page and
    the admin changelist of the same table, at each size; queries per page."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from approvals.models import ApprovalRequest, Status

    manager = get_user_model().objects.create_user(
        "bench-inbox", email="manager@example.com", password=None
    )
    manager.user_permissions.add(Permission.objects.get(codename="decide_approvalrequest"))
    admin = get_user_model().objects.create_superuser(
        "bench-admin", email="admin@example.com", password=None
    )
    # Only these rows are pending; everything the other benchmarks left is closed first.
    ApprovalRequest.objects.filter(status=Status.PENDING).update(status=Status.CANCELLED)
    manager_client, admin_client = Client(), Client()
    manager_client.force_login(manager)
    admin_client.force_login(admin)
    pages = {
        "inbox page 1": (manager_client, "/"),
        "inbox page 50": (manager_client, "/?page=50"),
        "admin page 1": (admin_client, "/admin/approvals/approvalrequest/"),
        "admin page 50": (admin_client, "/admin/approvals/approvalrequest/?p=50"),
    }
    results = {}
    existing = 0
    for size in config["inbox_rows"]:
        now = timezone.now()
        batch = []
        for n in range(existing, size):
            batch.append(
                ApprovalRequest(
                    callback_url=f"http://inbox.invalid/{n}",
                    title=f"Inbox bench {n}",
                    requester_email="requester@example.com",
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
        existing = size
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        for name, (client, url) in pages.items():
            if size < 50 * 25 and "50" in name:
                continue  # no 50th page at this size
            times, queries, status = [], None, None
            client.get(url, HTTP_HOST="127.0.0.1")  # warm
            for _ in range(config["inbox_repeats"]):
                with CaptureQueriesContext(connection) as captured:
                    started = time.perf_counter()
                    response = client.get(url, HTTP_HOST="127.0.0.1")
                    times.append((time.perf_counter() - started) * 1000)
                queries, status = len(captured.captured_queries), response.status_code
            results[(name, size)] = {"ms": median(times), "queries": queries, "status": status}
            log(f"{name} at {size} rows: {median(times):.1f} ms, {queries} queries, HTTP {status}")
    return results


# --- report ---------------------------------------------------------------------------------


def fmt(value, digits=1):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def report(config, smoke, info, reg, memory, cbs, inbox_results, started_at):
    goal_ratio = reg["ratio"] >= GOAL_RATIO
    goal_certs = reg["certs_fetches"] <= 1
    goal_tokens = cbs is not None and cbs["token_fetches"] <= 1
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/run.py`); issue 8 says what each figure is for. "
        "Medians of the rounds; every figure from the same run on the same machine.",
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
        "| server | gunicorn with `gunicorn.conf.py` (the Dockerfile's CMD): 1 worker, 8 threads |",
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
        "served by the same gunicorn. One decider exists, so each registration also renders its "
        "notification e-mail (sent to Django's dummy backend).",
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
    diag = reg["no_decider"]
    for name, label in (
        ("baseline", "baseline, second set of rounds"),
        ("api", "`POST /api/approvals`, nobody to notify (diagnostic)"),
    ):
        r = diag[name]
        lines.append(
            f"| {label} | {fmt(r['rps'])} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | "
            f"{', '.join(str(x) for x in r['rounds'])} | {r['ok']:,} | {r['errors']} |"
        )
    lines += [
        "",
        f"Ratio (API / baseline throughput): **{reg['ratio']:.2f}**; goal ≥ {GOAL_RATIO}: "
        f"**{'holds' if goal_ratio else 'missed'}**. Diagnostic, with the only decider made "
        f"inactive so no notification is rendered or recorded (a second set of rounds, each "
        f"against its own baseline rounds): **{diag['ratio']:.2f}**.",
        "",
        "## Token and certs traffic (4)",
        "",
        "| traffic | calls | fetches | the article's approach (one per call) | goal (≤ 1 per "
        "process and cache lifetime) |",
        "|---|---|---|---|---|",
        f"| certs URL, over the registration run (1 gunicorn worker) | "
        f"{reg['registrations']:,} registrations (+ warm-up) | {reg['certs_fetches']} | "
        f"{reg['registrations']:,}+ | {'holds' if goal_certs else 'missed'} |",
        f"| metadata token endpoint, over the registration run | "
        f"{reg['registrations']:,} registrations | {reg['token_fetches']} | 0 (no callbacks) | "
        f"{'holds' if reg['token_fetches'] <= 1 else 'missed'} |",
    ]
    if cbs:
        lines.append(
            f"| metadata token endpoint, over the callbacks (1 process) | {cbs['decisions']:,} "
            f"decisions, {cbs['delivered']:,} callbacks | {cbs['token_fetches']} | "
            f"{cbs['decisions']:,} | {'holds' if goal_tokens else 'missed'} |"
        )
    lines += [
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
    if cbs:
        lines += [
            "",
            "## Decision to callback (5)",
            "",
            f"Over {cbs['decisions']:,} decisions taken through `approvals.services.decide` in "
            "the driver's process (the service the decision POST calls; the first attempt is "
            "sent right after the commit, as in the POST), to the arrival at the local "
            "receiver: p50 "
            f"**{fmt(cbs['p50_ms'], 2)} ms**, p99 **{fmt(cbs['p99_ms'], 2)} ms**. "
            "Share of it outside the callback's own round trip (the decision's transaction, "
            "locking the row, recording the attempt; median): "
            f"**{fmt(cbs['outside_share'] * 100 if cbs['outside_share'] is not None else None)}"
            " %**. No goal is set for this figure. Not yet measured over HTTP (the decision "
            "POST through gunicorn with a signed-in session).",
        ]
    if inbox_results:
        sizes = config["inbox_rows"]
        lines += [
            "",
            "## Inbox at scale (3)",
            "",
            "Server time in process (Django's test client against the bench database, no "
            "network; median of "
            f"{config['inbox_repeats']} after one warm request), pending requests only; the "
            "inbox is the default tab *Waiting for me*, the admin changelist is "
            "`/admin/approvals/approvalrequest/` signed in as a superuser.",
            "",
            "| page | " + " | ".join(f"{s:,} rows: ms (queries)" for s in sizes) + " |",
            "|---|" + "---|" * len(sizes),
        ]
        for name in ("inbox page 1", "inbox page 50", "admin page 1", "admin page 50"):
            cells = []
            for size in sizes:
                r = inbox_results.get((name, size))
                cells.append(
                    "—"
                    if r is None
                    else f"{fmt(r['ms'])} ({r['queries']})"
                    + ("" if r["status"] == 200 else f" HTTP {r['status']}")
                )
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        small, large = sizes[0], sizes[-1]
        inbox_small = inbox_results.get(("inbox page 1", small))
        inbox_large = inbox_results.get(("inbox page 1", large))
        admin_large = inbox_results.get(("admin page 1", large))
        if inbox_small and inbox_large and admin_large:
            growth = inbox_large["ms"] / inbox_small["ms"]
            versus = inbox_large["ms"] / admin_large["ms"]
            lines += [
                "",
                f"Inbox first page at {large:,} rows / at {small:,} rows: **{growth:.2f}** "
                f"(goal ≤ 1.5: **{'holds' if growth <= 1.5 else 'missed'}**); inbox / admin "
                f"at {large:,} rows: **{versus:.2f}** (goal < 1: "
                f"**{'holds' if versus < 1 else 'missed'}**). Queries per inbox page: "
                f"{inbox_small['queries']} at {small:,} rows, {inbox_large['queries']} at "
                f"{large:,} rows.",
            ]
    lines += [
        "",
        "## Not measured yet",
        "",
        "* Inbox pages over HTTP through gunicorn (the figures above are in-process server time).",
        "* Decision to callback through the decision POST over HTTP (the figure above starts "
        "at the service call).",
        "* Several gunicorn workers, and token and certs traffic per worker with more than one.",
        "* Profiles and before/after figures (issue 8, item 7).",
        "",
    ]
    return "\n".join(lines), {"ratio": goal_ratio, "certs": goal_certs, "tokens": goal_tokens}


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
        call_command("migrate", verbosity=0)
        # One decider, so registrations run the notification path as in production.
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Permission

        decider = get_user_model().objects.create_user(
            "bench-decider", email="manager@example.com", password=None
        )
        decider.user_permissions.add(Permission.objects.get(codename="decide_approvalrequest"))

        log(f"gunicorn on port {port} (log: {log_file.name})")
        gunicorn = start_gunicorn(port, log_file)
        token = TokenMinter(key, audience=base_url).token(email=INVOKER)
        reg = registration(config, port, token, receiver, certs, metadata)
        memory = [
            (f"gunicorn worker (pid {pid})", rss_kib(pid)) for pid in worker_pids(gunicorn.pid)
        ]
        memory.append((f"gunicorn master (pid {gunicorn.pid})", rss_kib(gunicorn.pid)))
        stop_gunicorn(gunicorn)

        log(f"{config['callbacks']} decisions and their callbacks")
        cbs = callbacks(config, receiver, metadata, arrivals)
        inbox_results = None
        if not args.skip_inbox:
            log("inbox at " + ", ".join(f"{n:,}" for n in config["inbox_rows"]) + " rows")
            inbox_results = inbox(config)
        text, _goals = report(
            config, args.smoke, machine(pg_version), reg, memory, cbs, inbox_results, started_at
        )
        print()
        print(text)
        if not args.smoke:
            (ROOT / "docs" / "benchmarks.md").write_text(text, encoding="utf-8")
            log("wrote docs/benchmarks.md")
        failed = [
            part[name]["errors"]
            for part in (reg, reg["no_decider"])
            for name in ("api", "baseline")
        ]
        if any(failed) or reg["api"]["ok"] == 0:
            log("requests failed; see the gunicorn log")
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
