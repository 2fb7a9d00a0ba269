"""Check the audit log's hash chains; exit 1 naming the first broken link.

Meant as a nightly Cloud Run job (docs/deploy.md, step 13): its log line in Cloud Logging, with
the count of events and the newest event's hash, is the record kept outside the database.
"""

import logging

from django.core.management.base import BaseCommand, CommandError

from approvals import audit
from approvals.models import ApprovalRequest, AuditEvent

logger = logging.getLogger(__name__)

# Events read from the database at a time: memory stays flat whatever the log's size.
BATCH_ROWS = 2000


class Command(BaseCommand):
    help = (
        "Check that every audit event matches its hash and follows the one before it of its "
        "request; exit 0 when all do, 1 naming the first event that does not."
    )
    # Exit 1 means the log is broken, never that a setting is off: no system checks first.
    requires_system_checks = []

    def handle(self, *args, verbosity=1, **options):
        events = AuditEvent.objects.order_by("request_id", "pk").iterator(chunk_size=BATCH_ROWS)
        checked = audit.check(events)
        broken = checked.broken or _request_without_events()
        if broken:
            logger.error(
                "Audit chain broken at %s",
                broken,
                extra={"json_fields": {"request_id": str(broken.request_id), **_fields(broken)}},
            )
            raise CommandError(f"Audit chain broken at {broken}", returncode=1)
        newest = AuditEvent.objects.order_by("-pk").values("pk", "hash").first()
        summary = (
            f"Audit chain verified: {checked.events} event(s) of {checked.requests} request(s)"
            + (f"; newest event {newest['pk']}, hash {newest['hash']}." if newest else ".")
        )
        logger.info(
            summary,
            extra={
                "json_fields": {
                    "audit_events": checked.events,
                    "audit_requests": checked.requests,
                    "audit_newest_event": newest and newest["pk"],
                    "audit_newest_hash": newest and newest["hash"],
                }
            },
        )
        if verbosity:
            self.stdout.write(summary)


def _request_without_events() -> audit.Break | None:
    """A request whose events are all gone (TRUNCATE passes the trigger): each is registered
    with its first event, in one transaction."""
    orphan = ApprovalRequest.objects.filter(audit_events__isnull=True).values("pk").first()
    if orphan is None:
        return None
    return audit.Break(orphan["pk"], None, "it has no audit events at all: they were removed")


def _fields(broken: audit.Break) -> dict:
    return {"audit_broken_event": broken.event_id, "audit_broken_reason": broken.reason}
