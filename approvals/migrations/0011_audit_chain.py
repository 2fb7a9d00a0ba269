"""Chain the audit events by hash, and make the database refuse to change or delete them.

1. Each event gets `previous_hash` and `hash` (`approvals.audit`); the events already recorded
   are chained here, per request, in the order they were written (their ids).
2. A unique (request, previous_hash) pair: no event has two successors.
3. Triggers refuse UPDATE and DELETE of a row: on PostgreSQL one function raising an exception
   (SQLSTATE 23000) for BEFORE UPDATE OR DELETE, FOR EACH ROW; on SQLite two triggers
   `RAISE(ABORT, ...)`. Both surface in Django as IntegrityError. Other databases get the chain
   but no trigger.

TRUNCATE passes a row trigger on PostgreSQL: Django's `flush` (and the test suite's reset) uses
it. SQLite's `flush` deletes row by row, which the trigger refuses; the test suite lets its own
reset through by dropping and re-creating the triggers around it (approvals/tests/conftest.py).
On SQLite, a later migration that alters this table rebuilds it and loses the triggers: such a
migration must call `audit.install_triggers` again (`test_audit.py` fails if it does not).
"""

from django.db import migrations, models

from approvals import audit

BATCH = 1000


def chain_recorded_events(apps, schema_editor):
    """Link the events already written, request by request, in the order of their ids."""
    AuditEvent = apps.get_model("approvals", "AuditEvent")
    request_id, previous, batch = None, audit.GENESIS, []
    for event in AuditEvent.objects.order_by("request_id", "pk").iterator(chunk_size=BATCH):
        if event.request_id != request_id:
            request_id, previous = event.request_id, audit.GENESIS
        event.previous_hash = previous
        event.hash = previous = audit.digest(event)
        batch.append(event)
        if len(batch) == BATCH:
            AuditEvent.objects.bulk_update(batch, ["previous_hash", "hash"])
            batch = []
    AuditEvent.objects.bulk_update(batch, ["previous_hash", "hash"])


def install_triggers(apps, schema_editor):
    audit.install_triggers(schema_editor.connection)


def remove_triggers(apps, schema_editor):
    audit.remove_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0010_first_notice_outbox"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="previous_hash",
            field=models.CharField(
                default="",
                editable=False,
                help_text="The hash of the event before it, of its request.",
                max_length=64,
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(
                default="",
                editable=False,
                help_text="SHA-256 of its content and `previous_hash`.",
                max_length=64,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(chain_recorded_events, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(
                fields=("request", "previous_hash"), name="audit_chain_link"
            ),
        ),
        migrations.RunPython(install_triggers, remove_triggers),
    ]
