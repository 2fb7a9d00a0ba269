"""`make profile`: where a registration and an inbox page spend their time (pyinstrument).

In process, through Django's test client and the whole middleware stack, against a fresh
PostgreSQL database `approver_profile`, with the same settings as `make bench` (a real ID token
signed by a local key, certs from a local stand-in). It prints the queries of one registration,
the time per request of the baseline and of `POST /api/approvals`, and pyinstrument's call tree
of each; then the same for the inbox's first page at the given number of pending requests.
`docs/benchmarks.md` ("Profiles") says what the profiles showed and what was changed.
"""

import argparse
import os
import time
import uuid

from bench.driver import PG_URL, fresh_database
from bench.scale import copy_requests
from bench.scenarios import INVOKER, make_approver
from standins.google import CertsServer, SigningKey, TokenMinter

DB_NAME = os.environ.get("BENCH_PROFILE_DB_NAME", "approver_profile")
BASE_URL = "http://127.0.0.1:9"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300, help="registrations to profile")
    parser.add_argument("--inbox-rows", type=int, default=100_000, help="pending requests")
    args = parser.parse_args(argv)

    key = SigningKey("profile-key")
    certs = CertsServer([key]).start()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": f"{PG_URL}/{DB_NAME}",
            "DJANGO_SECRET_KEY": "profile-only-secret-key-" + uuid.uuid4().hex,
            "DJANGO_DEBUG": "off",
            "DJANGO_SECURE_SSL_REDIRECT": "off",
            "DJANGO_ALLOWED_HOSTS": "testserver",
            "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
            "APPROVALS_BASE_URL": BASE_URL,
            "APPROVALS_ALLOWED_INVOKERS": INVOKER,
            "APPROVALS_OIDC_CERTS_URL": certs.url,
            "APPROVALS_CALLBACK_URL_PREFIXES": BASE_URL + "/v1/",
        }
    )
    fresh_database(DB_NAME)
    import logging

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    logging.disable(logging.CRITICAL)  # the profile is of the work, not of the console
    try:
        registration(key, args.requests)
        inbox(args.inbox_rows)
    finally:
        from django.db import connections

        connections.close_all()
        certs.stop()


def registration(key, count):
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler

    make_approver("decider", "manager@example.com")
    token = TokenMinter(key, audience=BASE_URL).token(email=INVOKER)
    client = Client()

    def post(path, bearer):
        body = {
            "callback_url": f"{BASE_URL}/v1/projects/p/locations/l/workflows/w/executions/"
            f"{uuid.uuid4().hex}/callbacks/c",
            "title": "Profile",
            "requester_email": "requester@example.com",
            "amount": "12.50",
            "currency": "EUR",
        }
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        response = client.post(path, body, content_type="application/json", headers=headers)
        if response.status_code != 201:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.content[:300]}")

    endpoints = {"baseline": ("/bench/baseline", ""), "api": ("/api/approvals", token)}
    for path, bearer in endpoints.values():
        for _ in range(30):  # warm: connections, certs, templates
            post(path, bearer)
    with CaptureQueriesContext(connection) as captured:
        post(*endpoints["api"])
    print(f"\nOne registration: {len(captured.captured_queries)} queries")
    for query in captured.captured_queries:
        print("  ", query["sql"][:110])
    for name, (path, bearer) in endpoints.items():
        started = time.perf_counter()
        for _ in range(count):
            post(path, bearer)
        print(f"{name}: {(time.perf_counter() - started) / count * 1000:.2f} ms per request")
    profiler = Profiler(interval=0.0005)
    with profiler:
        for _ in range(count):
            post(*endpoints["api"])
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def inbox(rows):
    from django.db import connection
    from django.test import Client
    from pyinstrument import Profiler

    from approvals.models import ApprovalRequest, Status

    ApprovalRequest.objects.filter(status=Status.PENDING).update(status=Status.CANCELLED)
    copy_requests(0, rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    manager = make_approver("inbox", "inbox@example.com")
    client = Client()
    client.force_login(manager)
    client.get("/")
    started = time.perf_counter()
    for _ in range(10):
        client.get("/")
    print(f"\ninbox first page at {rows:,} rows: {(time.perf_counter() - started) * 100:.1f} ms")
    profiler = Profiler(interval=0.0005)
    with profiler:
        for _ in range(10):
            client.get("/")
    print(profiler.output_text(unicode=True, color=False, show_all=False))


if __name__ == "__main__":
    main()
