"""Prepare a local demo (make run): accounts to sign in with and a few pending expense reports.

Local use only: it refuses to run unless DJANGO_DEBUG is on.
"""

import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError

from approvals import registration, services
from approvals.models import ApprovalRequest, Status
from approvals.notify import reminders

DEMO_CALLER = "demo"
DEMO_PASSWORD = "demo-password"
DEMO_REPORTS = [
    {
        "title": "Team offsite in Lisbon",
        "requester_email": "alice@example.com",
        "amount": "1840.50",
        "currency": "EUR",
        "description": "Two nights for the platform team, flights booked separately.",
        "external_id": "EXP-2026-0142",
        "details": {
            "cost_center": "ENG-PLATFORM",
            "lines": [
                {"item": "Hotel, 2 nights x 6", "amount": "1440.00"},
                {"item": "Team dinner", "amount": "400.50"},
            ],
            "receipt": "https://example.com/receipts/0142.pdf",
        },
    },
    {
        "title": "Conference ticket: PyCon US",
        "requester_email": "bob@example.com",
        "amount": 799,
        "currency": "USD",
        "external_id": "EXP-2026-0143",
        "details": {"event": "PyCon US", "dates": "May 2027"},
    },
    {
        # Two signatures: the manager and someone from finance (README: "Approval policies").
        "title": "New laptops for the data team",
        "requester_email": "dan@example.com",
        "amount": "7200.00",
        "currency": "EUR",
        "external_id": "EXP-2026-0145",
        "required_approvals": 2,
        "details": {"lines": [{"item": "Laptop x 3", "amount": "7200.00"}]},
    },
    {
        "title": "Replacement laptop charger",
        "requester_email": "carol@example.com",
        "amount": "89.99",
        "currency": "GBP",
        "external_id": "EXP-2026-0144",
    },
]


class Command(BaseCommand):
    help = "Create local demo accounts and pending expense reports (DJANGO_DEBUG only)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("demo_setup is for local runs only (DJANGO_DEBUG=1).")
        _accounts()
        _reports()
        # The demo reports' first e-mails now, so they print above the banner below rather than
        # scrolling it away once the e-mail job starts.
        while reminders.send_due_notices():
            pass
        count = ApprovalRequest.objects.filter(
            registered_by=DEMO_CALLER, status=Status.PENDING
        ).count()
        self.stdout.write(
            self.style.SUCCESS("\nLocal demo ready.")
            + f"\n  Open {settings.APPROVALS_BASE_URL}/ and sign in as:"
            + f"\n    manager    / {DEMO_PASSWORD}   (an approver; {count} expense reports wait)"
            + f"\n    controller / {DEMO_PASSWORD}   (an approver in the finance group)"
            + f"\n    admin      / {DEMO_PASSWORD}   (the audit log at /admin/)"
            + "\n  Decide a report and watch the callback arrive below.\n"
        )


def _accounts() -> None:
    """The demo's people: a manager, a controller in finance, an administrator."""
    approvers, _ = Group.objects.get_or_create(name="Approvers")
    approvers.permissions.add(
        Permission.objects.get(
            codename="decide_approvalrequest", content_type__app_label="approvals"
        )
    )
    users = get_user_model()
    manager = users.objects.filter(username="manager").first() or users.objects.create_user(
        "manager", "manager@example.com", DEMO_PASSWORD
    )
    manager.groups.add(approvers)
    finance, _ = Group.objects.get_or_create(name="finance")
    controller = users.objects.filter(username="controller").first() or users.objects.create_user(
        "controller", "controller@example.com", DEMO_PASSWORD
    )
    controller.groups.add(approvers, finance)
    if not users.objects.filter(username="admin").exists():
        users.objects.create_superuser("admin", "admin@example.com", DEMO_PASSWORD)


def _reports() -> None:
    """The demo's expense reports, registered as a workflow would, unless some still wait."""
    waiting = ApprovalRequest.objects.filter(registered_by=DEMO_CALLER, status=Status.PENDING)
    if waiting.exists():
        return
    prefix = settings.APPROVALS_CALLBACK_URL_PREFIXES[0]
    for report in DEMO_REPORTS:
        execution = uuid.uuid4()
        callback_url = (
            f"{prefix.rstrip('/')}/projects/demo-project/locations/us-central1/workflows/"
            f"expense-approval/executions/{execution}/callbacks/{uuid.uuid4().hex}"
        )
        parsed = registration.parse({**report, "callback_url": callback_url})
        services.register(parsed, DEMO_CALLER)
