"""Where log lines go: readable console lines locally, JSON for Cloud Logging on Cloud Run.

What a request's lines carry on Cloud Run (request id, decision, delivery state, duration, trace)
is read from the container's own output in `test_container.py`.
"""

import io
import json
import logging
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.signals import request_finished
from django.http import HttpResponse
from django.test import RequestFactory
from google.cloud.logging_v2.handlers import StructuredLogHandler

from approvals.identity import google
from approver_site import cloud_logging

LOG_ONE_LINE = (
    "import logging; logging.getLogger('approvals.services').info("
    "'Registered approval request r-1', extra={'json_fields': {'request_id': 'r-1'}})"
)


def run_shell(code: str, **env) -> subprocess.CompletedProcess:
    clean = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("K_", "CLOUD_RUN_", "DJANGO_")) and name != "GOOGLE_CLOUD_PROJECT"
    }
    result = subprocess.run(  # noqa: S603 - fixed command of the test
        [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", code],
        cwd=settings.BASE_DIR,
        env={**clean, "DJANGO_SECRET_KEY": "logging-test-secret-key", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_local_runs_write_one_readable_console_line():
    result = run_shell(LOG_ONE_LINE)

    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(" INFO approvals.services: Registered approval request r-1")


def test_cloud_run_jobs_write_json_lines_on_stdout_too():
    """deliver_callbacks and migrate run as Cloud Run jobs: CLOUD_RUN_JOB is set, not K_SERVICE."""
    result = run_shell(
        LOG_ONE_LINE, CLOUD_RUN_JOB="approver-deliver-callbacks", GOOGLE_CLOUD_PROJECT="p"
    )

    assert result.stderr == ""
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    logged = [entry for entry in entries if entry.get("request_id") == "r-1"]
    assert len(logged) == 1
    assert logged[0]["message"] == "Registered approval request r-1"
    assert logged[0]["severity"] == "INFO"
    assert logged[0]["logging.googleapis.com/labels"] == {"python_logger": "approvals.services"}


@pytest.mark.django_db  # request_finished also closes old database connections
def test_the_trace_middleware_forgets_the_request_once_it_is_answered():
    messages = ("while serving", "afterwards")
    stream = io.StringIO()
    handler = StructuredLogHandler(project_id="demo-project", stream=stream)
    logger = logging.getLogger("approvals.tests.trace")
    logger.addHandler(handler)
    logger.propagate = False

    def view(request):
        logger.warning(messages[0])
        return HttpResponse("ok")

    request = RequestFactory().get("/", headers={"X-Cloud-Trace-Context": "a" * 32 + "/5;o=1"})
    try:
        response = cloud_logging.trace_middleware(view)(request)
        assert response.status_code == 200
        response.close()  # what the WSGI server does when the answer is sent: request_finished
        logger.warning(messages[1])
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        request_finished.disconnect(dispatch_uid="approver_site.cloud_logging")

    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    during, after = [entry for entry in entries if entry.get("message") in messages]
    assert during["logging.googleapis.com/trace"] == f"projects/demo-project/traces/{'a' * 32}"
    assert during["httpRequest"]["requestMethod"] == "GET"
    assert after["logging.googleapis.com/trace"] == ""
    assert after["httpRequest"] == {}


def test_the_project_id_comes_from_the_environment_or_else_the_metadata_server(monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-the-environment")
    assert google.project_id() == "from-the-environment"

    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    assert google.project_id() == "demo-project"  # the metadata server stand-in's answer
