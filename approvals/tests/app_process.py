"""The app's side of decisions, in a process of its own, for the tests that race it with the jobs.

Run as `python -m approvals.tests.app_process COMMAND CALLBACK_URL...` with the app's environment
(DATABASE_URL and the rest, see `test_concurrency.app_environment`):

* `decide`: register a request for each CALLBACK_URL and approve it as a manager, as the request
  page does (`services.decide`, whose first callback attempt runs right after the commit), then
  print its delivery state; the first attempt waits up to 60 s for an answer here, so that a
  test's slow endpoint, not the read timeout, says when it ends;
* `make-due`: make those requests' callbacks due now (retries whose backoff has passed);
* `state`: print their delivery states, one JSON object a line.
"""

import json
import os
import sys

import django


def main(command: str, *callback_urls: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "approver_site.settings")
    django.setup()
    {"decide": decide, "make-due": make_due, "state": state}[command](callback_urls)


def decide(callback_urls) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    from approvals import delivery, registration, services

    approvers, _ = Group.objects.get_or_create(name="Approvers")
    approvers.permissions.add(Permission.objects.get(codename="decide_approvalrequest"))
    manager = get_user_model().objects.create_user("manager", "manager@example.com", "pw")
    manager.groups.add(approvers)
    delivery.FIRST_ATTEMPT_READ_TIMEOUT_SECONDS = 60
    for url in callback_urls:
        body = {"callback_url": url, "title": "Trip", "requester_email": "ann@example.com"}
        registered = services.register(registration.parse(body), caller="app-process")
        services.decide(registered.approval.pk, manager, "approved", "")
    state(callback_urls)


def make_due(callback_urls) -> None:
    from django.utils import timezone

    from approvals.models import ApprovalRequest

    ApprovalRequest.objects.filter(callback_url__in=callback_urls).update(
        delivery_next_attempt_at=timezone.now()
    )


def state(callback_urls) -> None:
    from approvals.models import ApprovalRequest

    for url in callback_urls:
        request = ApprovalRequest.objects.get(callback_url=url)
        print(
            json.dumps({"status": request.delivery_status, "attempts": request.delivery_attempts})
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
