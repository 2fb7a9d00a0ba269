"""`make bench` (and `make bench-smoke`): the benchmarks of issue 8, and the processes they need.

The driver starts the local stand-ins (Google's certs, the metadata server, the Workflows
callback endpoint) in this process, a fresh PostgreSQL database `approver_bench`, and gunicorn
with the production config; the load comes from `bench/load.py` in a process of its own. It runs
the scenarios (`bench/scenarios.py`), prints the report (`bench/report.py`) and, in full mode,
writes it to `docs/benchmarks.md`, keeping the page's hand-written history.
"""

import argparse
import datetime
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from bench import chart, passes, report, scale, scenarios, wrk
from bench.scenarios import INVOKER, log
from standins.google import (
    CertsServer,
    MetadataServer,
    SigningKey,
    TokenMinter,
)
from standins.http import free_port
from standins.workflows import CallbackReceiver

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# BENCH_DB_NAME: another name, so that runs side by side never drop each other's database.
DB_NAME = os.environ.get("BENCH_DB_NAME", "approver_bench")
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")

FULL = {
    "warmup": 3.0,
    "rounds": 3,
    "seconds": 10.0,
    "threads": 8,
    "callbacks": 1000,
    "http_decisions": 200,
    "inbox_repeats": 5,
    "first_registrations": 100,
    # The 10,000 would take the pass minutes on this machine; the rate is the figure.
    "notices": 4_000,
    "backlog": 10_000,
    "scale_rows": [100, 10_000, 100_000, 1_000_000],
}

SMOKE = {
    "warmup": 1.0,
    "rounds": 1,
    "seconds": 2.0,
    "threads": 4,
    "callbacks": 50,
    "http_decisions": 20,
    "inbox_repeats": 1,
    "first_registrations": 100,
    "notices": 200,
    "backlog": 200,
    "scale_rows": [100, 3_000],
}


def machine(pg_version):
    """The machine the figures were taken on: they are this machine's, not absolute."""
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


def fresh_database(name=DB_NAME):
    """Drop and create the database, so that no earlier run's rows weigh on this one."""
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
        return connection.execute("SHOW server_version").fetchone()[0]


def start_gunicorn(port, log_file, workers=1):
    """gunicorn with the production config, once it answers (it logs to `log_file`)."""
    process = subprocess.Popen(  # noqa: S603 - our own command line
        [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py"],
        cwd=ROOT,
        env={**os.environ, "GUNICORN_WORKERS": str(workers)},
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
    """Stop gunicorn gracefully, and its whole process group when it will not go."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def worker_pids(master_pid):
    """The gunicorn workers, whose memory the report shows beside the master's."""
    try:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    except OSError:
        return []
    return [int(pid) for pid in children]


def rss_kib(pid):
    """A process's resident memory in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


WRK = None  # wrk's path once found (`bench/wrk.py`), or None: then bench/load.py


def run_load(port, path, token, callback_prefix, seconds, threads):
    """One load run: wrk where there is one, else `bench/load.py` in a process of its own."""
    if WRK:
        return wrk.run(WRK, port, path, token, callback_prefix, seconds, threads)
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


def main(argv=None):
    """Every scenario against one fresh database and gunicorn; non-zero when one failed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a few seconds, writes no docs")
    parser.add_argument(
        "--only",
        help=f"comma-separated passes to run alone, printing their figures, writing no docs: "
        f"{', '.join(ALONE)}",
    )
    args = parser.parse_args(argv)
    only = [name.strip() for name in (args.only or "").split(",") if name.strip()]
    if unknown := set(only) - set(ALONE):
        parser.error(f"no such pass: {', '.join(sorted(unknown))}")
    config = dict(SMOKE if args.smoke else FULL)
    global WRK
    WRK = wrk.find()
    log(f"load generator: {WRK or 'bench/load.py (no wrk: see tools/ensure-wrk)'}")
    config["load"] = "wrk" if WRK else "bench/load.py"
    started_at = datetime.datetime.now(datetime.UTC)
    stand_ins = StandIns()
    port = free_port()
    production_environment(port, stand_ins)
    gunicorn = None
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in finally
        "w", prefix="bench-gunicorn-", suffix=".log", delete=False
    )
    try:
        pg_version = prepare_database()
        log(f"gunicorn on port {port} (log: {log_file.name})")
        if only:
            return run_alone(only, config, stand_ins)
        gunicorn = start_gunicorn(port, log_file)
        figures, gunicorn = run_scenarios(config, port, stand_ins, gunicorn, log_file)
        stop_gunicorn(gunicorn)
        return finish(config, args.smoke, figures, machine(pg_version), started_at)
    finally:
        if gunicorn is not None:
            stop_gunicorn(gunicorn)
        from django.db import connections

        connections.close_all()
        stand_ins.stop()
        log_file.close()


# The driver's own passes, which need no gunicorn: `--only` runs them alone while one is worked on.
ALONE = ("notices", "chat", "backlog")


def run_alone(only, config, stand_ins):
    """The passes named in `only`, each printed as JSON; no report, no docs."""
    from django.conf import settings

    for name in only:
        if name == "notices":
            figures = passes.first_notices(config["notices"])
        elif name == "chat":
            figures = passes.chat_notices(config["notices"])
        else:
            concurrency = settings.APPROVALS_DELIVERY_CONCURRENCY
            figures = passes.callback_backlog(
                config, stand_ins.receiver, stand_ins.arrivals, concurrency
            )
            figures.pop("drain", None)
        ratio = figures["per_s"] / figures["bare_per_s"]
        per_s, bare_per_s = figures["per_s"], figures["bare_per_s"]
        log(f"{name}: {per_s:,.1f}/s against {bare_per_s:,.1f}/s bare: {ratio:.2f}")
        print(json.dumps({name: figures}, default=str))
    return 0


class StandIns:
    """Google's certs, the metadata server and the Workflows callback endpoint, in this process."""

    def __init__(self):
        """Start the three servers; the receiver records each callback's arrival time."""
        self.key = SigningKey("bench-key")
        self.certs = CertsServer([self.key]).start()
        self.metadata = MetadataServer().start()
        # Nothing kept in memory per callback beyond the arrival times.
        self.arrivals = {}
        self.receiver = CallbackReceiver(
            echo=lambda received: self.arrivals.setdefault(received.path, time.perf_counter())
        )
        self.receiver.start()

    def stop(self):
        """Stop the three servers."""
        for server in (self.certs, self.metadata, self.receiver):
            server.stop()


def production_environment(port, stand_ins):
    """The production settings' environment, pointed at the stand-ins instead of Google."""
    metadata_host = f"127.0.0.1:{stand_ins.metadata.server_address[1]}"
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
            "APPROVALS_BASE_URL": f"http://127.0.0.1:{port}",
            "APPROVALS_ALLOWED_INVOKERS": INVOKER,
            "APPROVALS_OIDC_CERTS_URL": stand_ins.certs.url,
            "APPROVALS_CALLBACK_URL_PREFIXES": stand_ins.receiver.base_url + "/v1/",
            "APPROVALS_CALLBACK_AUTH": "google",
            "GCE_METADATA_HOST": metadata_host,
            "GCE_METADATA_IP": metadata_host,
            "GOOGLE_CLOUD_PROJECT": "demo-project",
        }
    )


def prepare_database():
    """What a deployment has before its first request: the schema, the static files, a decider."""
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
    # What the Dockerfile does at build time: without the manifest, every page answers 500.
    call_command("collectstatic", interactive=False, verbosity=0)
    # One decider, so the e-mail pass after the registrations has someone to notify.
    scenarios.make_approver("bench-decider", "manager@example.com")
    return pg_version


def run_scenarios(config, port, stand_ins, gunicorn, log_file):
    """The scenarios in their order, each on the database the one before left; the figures,
    and the gunicorn now running (the two-worker round restarts it)."""
    s = stand_ins
    token = TokenMinter(s.key, audience=f"http://127.0.0.1:{port}").token(email=INVOKER)
    prefix = scenarios.callback_prefix(s.receiver)
    [worker] = worker_pids(gunicorn.pid)
    scenarios.register_some(port, token, prefix, config["first_registrations"])
    first_rss = rss_kib(worker)
    reg = scenarios.registration(config, port, token, s.receiver, s.certs, s.metadata, run_load)
    memory = {
        "first": config["first_registrations"],
        "first_mib": first_rss / 1024,
        "after": config["first_registrations"] + reg["api"]["ok"] + reg["warmup_ok"],
        "after_mib": rss_kib(worker) / 1024,
        "master_mib": rss_kib(gunicorn.pid) / 1024,
    }
    memory["ratio"] = memory["after_mib"] / memory["first_mib"]

    log("registration with 2 gunicorn workers")
    stop_gunicorn(gunicorn)
    gunicorn = start_gunicorn(port, log_file, workers=2)
    reg["two_workers"] = scenarios.api_rounds(config, port, token, prefix, run_load, "2 workers ")
    stop_gunicorn(gunicorn)
    gunicorn = start_gunicorn(port, log_file)
    config["gunicorn_pid"] = gunicorn.pid

    log(f"{config['http_decisions']} decision POSTs through gunicorn and their callbacks")
    http_cbs = scenarios.decisions_over_http(config, port, s.receiver, s.arrivals, s.metadata)
    log(f"{http_cbs['delivered']} of {http_cbs['decisions']} arrived {http_cbs['statuses']}")
    log(f"{config['callbacks']} decisions in process and their callbacks")
    cbs = scenarios.callbacks(config, s.receiver, s.metadata, s.arrivals)

    log(f"first notices of {config['notices']:,} requests over SMTP")
    notices = passes.first_notices(config["notices"])
    log(f"notices: {notices['per_s']:,.0f}/s against {notices['bare_per_s']:,.0f}/s bare")
    log(f"first notices of {config['notices']:,} requests to the Slack stand-in")
    chat_notices = passes.chat_notices(config["notices"])
    log(f"Slack: {chat_notices['per_s']:,.0f}/s against {chat_notices['bare_per_s']:,.0f}/s bare")
    from django.conf import settings

    concurrency = settings.APPROVALS_DELIVERY_CONCURRENCY
    log(f"callback backlog of {config['backlog']:,}, {concurrency} at a time")
    backlog = passes.callback_backlog(config, s.receiver, s.arrivals, concurrency)

    log(
        "inbox, search and admin as the table grows: "
        + ", ".join(f"{n:,}" for n in config["scale_rows"])
    )
    at_scale = scale.pages_at_scale(config, port)
    figures = {
        "reg": reg,
        "memory": memory,
        "decisions": (http_cbs, cbs),
        "notices": notices,
        "chat_notices": chat_notices,
        "backlog": backlog,
        "scale": at_scale,
    }
    return figures, gunicorn


def finish(config, smoke, figures, info, started_at):
    """Print the report and, for a full run that did not fail, write it and its charts; the
    exit status (1 when any scenario's requests failed or nothing arrived, smoke or not)."""
    text, _goals = report.report(config, info, figures, started_at)
    print()
    print(text)
    failures = run_failures(config, figures)
    for failure in failures:
        log(failure)
    if failures:
        return 1
    if not smoke:
        page = ROOT / "docs" / "benchmarks.md"
        page.write_text(report.with_history(text, page), encoding="utf-8")
        write_charts(figures)
        log("wrote docs/benchmarks.md and its charts")
    return 0


def write_charts(figures):
    """The page's two SVG charts, beside it in docs/."""
    pages = figures["scale"]["pages"]
    series = {}
    for (name, size), result in sorted(pages.items(), key=lambda item: item[0][1]):
        series.setdefault(name, []).append((size, result["ms"]))
    chart.write(
        ROOT / "docs" / "benchmarks-scale.svg",
        chart.lines(
            "First page against the rows", series, "pending requests", "ms (in process)", log_x=True
        ),
    )
    drain = figures["backlog"]["drain"]
    step = max(1, len(drain) // 200)
    points = [
        (0.0, 0),
        *[(at, n + 1) for n, at in enumerate(drain)][::step],
        (drain[-1], len(drain)),
    ]
    chart.write(
        ROOT / "docs" / "benchmarks-drain.svg",
        chart.lines(
            "Callback backlog drained by one job",
            {"delivered": points},
            "seconds",
            "callbacks delivered",
        ),
    )


def run_failures(config, figures):
    """What went wrong in the run: a figure from failed requests is no figure, so it fails."""
    reg, (http_cbs, cbs) = figures["reg"], figures["decisions"]
    failures = []
    for name, result in (
        ("api", reg["api"]),
        ("baseline", reg["baseline"]),
        ("two workers", reg["two_workers"]["api"]),
    ):
        if result["errors"] or result["ok"] == 0:
            failures.append(f"registration requests failed ({name}); see the gunicorn log")
    if http_cbs["delivered"] != http_cbs["decisions"]:
        failures.append(f"decision POSTs failed or no callback arrived: {http_cbs['statuses']}")
    if cbs["delivered"] != cbs["decisions"]:
        failures.append(f"{cbs['decisions'] - cbs['delivered']} in-process callbacks never arrived")
    notices = figures["notices"]
    if notices["notified"] != notices["requests"]:
        failures.append(f"{notices['notified']} of {notices['requests']} requests were notified")
    chat_notices = figures["chat_notices"]
    if chat_notices["sent"] != chat_notices["requests"]:
        failures.append(
            f"{chat_notices['sent']} of {chat_notices['requests']} Slack messages were sent"
        )
    backlog = figures["backlog"]
    if (
        backlog["delivered"] != backlog["callbacks"]
        or backlog["two_jobs_delivered"] != backlog["callbacks"]
    ):
        failures.append("callbacks of the backlog never arrived")
    if backlog["twice"]:
        failures.append(f"{backlog['twice']} callbacks of the backlog arrived twice")
    for (name, size), r in figures["scale"]["pages"].items():
        if r["status"] != 200 or not r["rows_in_process"]:
            failures.append(
                f"{name} at {size:,} rows: HTTP {r['status']}, {r['rows_in_process']} rows"
            )
    export = figures["scale"]["export"]
    if export["status"] != 200 or export["rows"] < config["scale_rows"][-1]:
        failures.append(f"the export answered {export['status']} with {export['rows']} rows")
    return failures


if __name__ == "__main__":
    sys.exit(main())
