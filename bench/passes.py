"""The job passes at volume (issue 17): first notices over real SMTP, a callback backlog.

Each is timed against its bare baseline (`bench/bare.py`) in the same run, the baseline and the
job each in a process of their own where the work is the job's (`deliver_callbacks`), or in the
driver where the pass is the driver's own (`send_notifications`, with a local SMTP server in a
process of its own either way).
"""

import datetime
import json
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from bench.scenarios import INVOKER, log

ROOT = Path(__file__).resolve().parent.parent


def run_json(*args):
    """A module of ours in a process of its own; its last line, read as JSON."""
    done = subprocess.run(  # noqa: S603 - our own command line
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"{args} exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def listening(process, port, what):
    """(process, port) once `process` accepts connections on `port`; killed if not in 20 s."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{what} did not start")


def smtp_server():
    """aiosmtpd's own server, discarding every message, in a process of its own; (process, port)."""
    from standins.http import free_port

    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own command line
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-c",
            "aiosmtpd.handlers.Sink",
            "-l",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
    )
    return listening(process, port, "aiosmtpd")


def new_requests(count, label, **fields):
    """`count` pending requests registered now, as the registration leaves them."""
    from django.utils import timezone

    from approvals.models import ApprovalRequest

    now = timezone.now()
    rows = [
        ApprovalRequest(
            callback_url=f"http://{label}.invalid/{uuid.uuid4().hex}/{n}",
            title=f"Expense report {n}",
            requester_email="requester@example.com",
            requester_key="requester@example.com",
            registered_by=INVOKER,
            amount=n % 5000,
            currency="EUR",
            created_at=now,
            expires_at=now + datetime.timedelta(days=2),
            **fields,
        )
        for n in range(count)
    ]
    return ApprovalRequest.objects.bulk_create(rows, batch_size=2000)


def first_notices(count):
    """One `send_notifications` pass over `count` new requests to a local SMTP server, against
    a bare smtplib loop sending as many pre-rendered messages over one connection."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from approvals.models import ApprovalRequest, Notice, Status
    from approvals.notify.channels import email

    ApprovalRequest.objects.filter(status=Status.PENDING).update(status=Status.CANCELLED)
    # One decider, one mail per request: the earlier scenarios' deciders are done deciding.
    get_user_model().user_permissions.through.objects.exclude(
        user__username="bench-decider"
    ).delete()
    new_requests(count, "notice", next_reminder_at=timezone.now())
    server, port = smtp_server()
    saved = (settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    try:
        started = time.perf_counter()
        call_command("send_notifications", verbosity=0)
        seconds = time.perf_counter() - started
        sent = Notice.objects.filter(state=Notice.State.SENT, purpose="new").count()
        notified = ApprovalRequest.objects.filter(
            status=Status.PENDING, notified_at__isnull=False
        ).count()
        notice = Notice.objects.filter(state=Notice.State.SENT, purpose="new").first()
        rendered = email.message(notice, [])
        with tempfile.NamedTemporaryFile("wb", suffix=".eml", delete=False) as file:
            file.write(rendered.message().as_bytes(linesep="\r\n"))
        django_seconds = django_mail_floor(rendered, sent)
        # The same number of mails as the pass sent (one per decider and request).
        bare = run_json(
            *("-m", "bench.bare", "smtp", "--port", str(port)),
            *("--count", str(sent), "--message", file.name),
        )
    finally:
        settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT = saved
        server.kill()
        server.wait()
    return {
        "requests": count,
        "notified": notified,
        "sent": sent,
        "seconds": seconds,
        "per_s": sent / seconds,
        "bare_per_s": bare["sent"] / bare["seconds"],
        "ratio": (sent / seconds) / (bare["sent"] / bare["seconds"]),
        "django_per_s": sent / django_seconds,
        "django_ratio": (sent / seconds) / (sent / django_seconds),
    }


def django_mail_floor(rendered, count):
    """Seconds for Django's SMTP backend to send `count` copies of one mail whose text and HTML
    are already rendered, over one connection: what Django's mail costs (building each MIME
    message, then smtplib) before the app does anything of its own."""
    from django.core import mail

    html = rendered.alternatives[0][0]
    started = time.perf_counter()
    with mail.get_connection() as connection:
        for _ in range(count):
            copy = mail.EmailMultiAlternatives(
                rendered.subject, rendered.body, to=rendered.to, connection=connection
            )
            copy.attach_alternative(html, "text/html")
            copy.send()
    return time.perf_counter() - started


def due_callbacks(receiver, count, label):
    """`count` approved requests whose callbacks to the receiver are due now (a Workflows outage
    over), with their decision, as `services.decide` leaves them."""
    from django.utils import timezone

    from approvals.models import ApprovalRequest, Decision, DeliveryStatus, Status

    now = timezone.now()
    rows = new_requests(count, label)
    for n, row in enumerate(rows):
        row.callback_url = receiver.callback_url(f"{label}-{n}")
        row.status, row.closed_at = Status.APPROVED, now
        row.delivery_status, row.delivery_next_attempt_at = DeliveryStatus.DUE, now
    fields = ["callback_url", "status", "closed_at", "delivery_status", "delivery_next_attempt_at"]
    ApprovalRequest.objects.bulk_update(rows, fields, batch_size=2000)
    Decision.objects.bulk_create(
        (
            Decision(
                request=row, outcome="approved", decided_by="manager@example.com", decided_at=now
            )
            for row in rows
        ),
        batch_size=2000,
    )
    return rows


def deliver(jobs=1):
    """`jobs` deliver_callbacks passes at once, each in a process of its own; the seconds."""
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "deliver_callbacks", "--verbosity", "0"],
            cwd=ROOT,
            # Its log lines (one per callback, as in production) are written, and thrown away.
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(jobs)
    ]
    codes = [process.wait() for process in processes]
    if any(codes):
        raise RuntimeError(f"deliver_callbacks exited {codes}")
    return time.perf_counter() - started


def callback_backlog(config, receiver, arrivals, concurrency):
    """A backlog of due callbacks drained by one job against a bare loop of as many threads;
    then a second backlog by two jobs at once, none sent twice; the drain over time."""
    count = config["backlog"]
    rows = due_callbacks(receiver, count, f"backlog-{uuid.uuid4().hex[:6]}")
    before = len(receiver.received)
    started = time.perf_counter()
    seconds = deliver()
    sent = Counter(c.path for c in receiver.received[before:])
    drain = sorted(arrivals[path] - started for path in sent if path in arrivals)
    log(f"backlog of {count:,}: one job in {seconds:.1f} s ({count / seconds:,.0f}/s)")

    from approvals.wire import callback_body

    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as file:
        for n, row in enumerate(rows):
            url = receiver.callback_url(f"bare-{uuid.uuid4().hex[:6]}-{n}")
            file.write(json.dumps([url, callback_body(row)]) + "\n")
    bare = run_json(
        *("-m", "bench.bare", "callbacks", "--callbacks", file.name),
        *("--concurrency", str(concurrency)),
    )
    log(f"bare loop: {bare['sent'] / bare['seconds']:,.0f}/s")

    due_callbacks(receiver, count, f"twice-{uuid.uuid4().hex[:6]}")
    before_two = len(receiver.received)
    two_seconds = deliver(jobs=2)
    sent_two = Counter(c.path for c in receiver.received[before_two:])
    return {
        "callbacks": count,
        "delivered": len(sent),
        "twice": sum(n > 1 for n in sent.values()) + sum(n > 1 for n in sent_two.values()),
        "seconds": seconds,
        "per_s": count / seconds,
        "bare_per_s": bare["sent"] / bare["seconds"],
        "ratio": (count / seconds) / (bare["sent"] / bare["seconds"]),
        "two_jobs_per_s": count / two_seconds,
        "two_jobs_delivered": len(sent_two),
        "drain": drain,
        "concurrency": concurrency,
    }


def slack_standin(users):
    """The Slack stand-in in a process of its own, with `users` in its workspace; (process,
    port)."""
    from standins.http import free_port

    port = free_port()
    command = [sys.executable, "-m", "standins.slack", "--port", str(port)]
    for email in users:
        command += ["--user", email]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)  # noqa: S603
    return listening(process, port, "the Slack stand-in")


def chat_notices(count):
    """One `send_notifications` pass over `count` new requests to the Slack stand-in (the one
    decider reached by Slack alone: e-mail turned off for them), against a bare `requests`
    loop posting as many of the same pre-rendered `chat.postMessage` calls to the same
    stand-in over one keep-alive connection."""
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from approvals.models import ApprovalRequest, ChannelPreference, Notice, Status
    from approvals.notify.channels import slack
    from standins.slack import BOT_TOKEN, SIGNING_SECRET

    decider = "manager@example.com"  # the bench-decider account's e-mail (driver.py)
    ApprovalRequest.objects.filter(status=Status.PENDING).update(status=Status.CANCELLED)
    new_requests(count, "chat", next_reminder_at=timezone.now())
    server, port = slack_standin([decider])
    names = (
        "APPROVALS_SLACK_BOT_TOKEN",
        "APPROVALS_SLACK_SIGNING_SECRET",
        "APPROVALS_SLACK_API_URL",
    )
    saved = [getattr(settings, name) for name in names]
    api_url = f"http://127.0.0.1:{port}/api/"
    for name, value in zip(names, (BOT_TOKEN, SIGNING_SECRET, api_url), strict=True):
        setattr(settings, name, value)
    preference = ChannelPreference.objects.create(email_key=decider, off=["email"])
    try:
        started = time.perf_counter()
        call_command("send_notifications", verbosity=0)
        seconds = time.perf_counter() - started
        sent = Notice.objects.filter(channel="slack", state=Notice.State.SENT, purpose="new")
        one = sent.select_related("request", "user").first()
        text, blocks = slack._content(one)
        message = {"channel": one.ref["channel"], "text": text, "blocks": blocks}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
            json.dump(message, file)
        sdk_seconds = slack_sdk_floor(message, sent.count())
        bare = run_json(
            *("-m", "bench.bare", "slack", "--url", api_url + "chat.postMessage"),
            *("--token", BOT_TOKEN, "--count", str(sent.count()), "--message", file.name),
        )
    finally:
        for name, value in zip(names, saved, strict=True):
            setattr(settings, name, value)
        preference.delete()
        server.kill()
        server.wait()
    per_s = sent.count() / seconds
    bare_per_s = bare["sent"] / bare["seconds"]
    return {
        "requests": count,
        "sent": sent.count(),
        "seconds": seconds,
        "per_s": per_s,
        "bare_per_s": bare_per_s,
        "ratio": per_s / bare_per_s,
        "sdk_per_s": sent.count() / sdk_seconds,
        "sdk_ratio": sdk_seconds / seconds,
    }


def slack_sdk_floor(message, count):
    """Seconds for the app's slack_sdk `WebClient` to post `count` copies of one pre-rendered
    message: what slack_sdk costs (urllib, a connection per call) before the app does anything
    of its own."""
    from approvals.notify.channels import slack

    started = time.perf_counter()
    for _ in range(count):
        slack.client().chat_postMessage(**message)
    return time.perf_counter() - started
