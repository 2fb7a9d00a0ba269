"""A year of requests (issue 17): the inbox, its search, the admin's list and the CSV export as
the table grows to a million rows, built with PostgreSQL's COPY.

Every row is pending and visible to the bench's manager; one in a hundred has "Lisbon" in its
title, the word the search looks for (so a search's first page has rows to show at every size).
"""

import datetime
import importlib
import threading
import time
import uuid

from bench.scenarios import INVOKER, SignedIn, log, make_approver, median, page_in_process

WORD = "Lisbon"
TRIGRAMS = importlib.import_module("approvals.migrations.0023_speed_search_trigrams")
PAGES = {
    "inbox page 1": "/",
    "search page 1": f"/?q={WORD.lower()}",
    "admin page 1": "/admin/approvals/approvalrequest/",
}
ADMIN_EXPORT = "/admin/approvals/approvalrequest/export/"


def copy_requests(start, end):
    """Rows `start` to `end` through COPY: one template row's values, a few columns varied."""
    from django.db import connection
    from django.utils import timezone

    from approvals.models import ApprovalRequest

    now = timezone.now()
    template = ApprovalRequest(
        callback_url="",
        title="",
        requester_email="requester@example.com",
        requester_key="requester@example.com",
        registered_by=INVOKER,
        currency="EUR",
        created_at=now,
        expires_at=now + datetime.timedelta(days=30),
    )
    fields = ApprovalRequest._meta.concrete_fields
    values = [f.get_db_prep_save(getattr(template, f.attname), connection) for f in fields]
    at = {f.attname: index for index, f in enumerate(fields)}
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = ApprovalRequest._meta.db_table
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for n in range(start, end):
            row = list(values)
            row[at["id"]] = uuid.uuid4()
            row[at["callback_url"]] = f"http://scale.invalid/{n}"
            row[at["title"]] = f"{WORD if n % 100 == 0 else 'Expense'} report {n}"
            row[at["amount"]] = n % 5000
            row[at["created_at"]] = now - datetime.timedelta(seconds=end - n)
            copy.write_row(row)


def grow(existing, size):
    """The table grown to `size` rows: COPY without the trigram indexes, built again after
    (as a restore would); the seconds it took."""
    from django.db import connection

    started = time.perf_counter()
    with connection.schema_editor() as editor:
        TRIGRAMS.drop(None, editor)
    copy_requests(existing, size)
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '256MB'")  # the index builds, in memory
    with connection.schema_editor() as editor:
        TRIGRAMS.create(None, editor)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE approvals_approvalrequest")
    return time.perf_counter() - started


def search_plan():
    """PostgreSQL's plan of the inbox's search query (EXPLAIN ANALYZE), as the report shows it."""
    from django.db import connection

    from approvals.models import ApprovalRequest
    from approvals.web import inbox

    query = inbox.apply(ApprovalRequest.objects.all(), inbox.Filters(query=WORD), "pending")
    sql, params = query[: inbox.PAGE_SIZE + 1].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def pages_at_scale(config, port):
    """The pages at each size: server time in process (median) and over HTTP; the plan."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from approvals.models import ApprovalRequest, Status

    ApprovalRequest.objects.filter(status=Status.PENDING).update(status=Status.CANCELLED)
    manager = make_approver("bench-scale", "scale-manager@example.com")
    admin = get_user_model().objects.create_superuser("bench-scale-admin", "a@example.com", None)
    clients = {"inbox": Client(), "admin": Client()}
    clients["inbox"].force_login(manager)
    clients["admin"].force_login(admin)
    over_http = {"inbox": SignedIn(manager, port), "admin": SignedIn(admin, port)}
    results, builds, made = {}, {}, 0
    try:
        for size in config["scale_rows"]:
            builds[size] = grow(made, size)
            made = size
            for name, url in PAGES.items():
                who = "admin" if name.startswith("admin") else "inbox"
                result = page_in_process(clients[who], url, config["inbox_repeats"])
                result["http_ms"] = http_ms(over_http[who], url, config["inbox_repeats"])
                results[(name, size)] = result
                log(
                    f"{name} at {size:,} rows: {result['ms']:.1f} ms in process "
                    f"({result['queries']} queries, {result['rows_in_process']} rows), "
                    f"{result['http_ms']:.1f} ms over HTTP; built in {builds[size]:.0f} s"
                )
        plan = search_plan()
        export = export_memory(over_http["admin"], config)
    finally:
        for session in over_http.values():
            session.close()
    return {"pages": results, "builds": builds, "plan": plan, "export": export}


def http_ms(session, url, repeats):
    """The page's median time through gunicorn."""
    session.get(url)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.get(url)
        times.append((time.perf_counter() - started) * 1000)
    return median(times)


def export_memory(session, config):
    """The CSV export of every row through gunicorn: rows per second, the worker's peak RSS."""
    from bench.driver import rss_kib, worker_pids

    pid = worker_pids(config["gunicorn_pid"])[0]
    peak = [rss_kib(pid)]
    before = peak[0]
    done = threading.Event()

    def sample():
        while not done.wait(0.05):
            peak.append(rss_kib(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    lines = 0
    started = time.perf_counter()
    try:
        with session.http.get(session.base_url + ADMIN_EXPORT, stream=True, timeout=600) as answer:
            status = answer.status_code
            for piece in answer.iter_content(chunk_size=1 << 16):
                lines += piece.count(b"\n")
    finally:
        done.set()
        sampler.join()
    seconds = time.perf_counter() - started
    rows = max(0, lines - 1)
    log(f"export: {rows:,} rows in {seconds:.1f} s, worker peak {max(peak) / 1024:.1f} MiB")
    return {
        "status": status,
        "rows": rows,
        "seconds": seconds,
        "per_s": rows / seconds,
        "before_mib": before / 1024,
        "peak_mib": max(peak) / 1024,
    }
