"""The canonical forms of the stored addresses (`approvals.emails`), filled in for every row.

Schema changes and the data they need come before the indexes and constraints of 0012: on
PostgreSQL a table whose rows were just updated cannot be altered in the same transaction.
"""

from django.db import migrations, models

from approvals import emails

BATCH = 2000


def _key(function, address: str) -> str:
    """The canonical form, or the address as it was stored when it has none (such addresses
    were accepted before; no account can match them, since an account's e-mail without a
    canonical form decides nothing)."""
    try:
        return function(address)
    except emails.InvalidAddress:
        return address.strip().lower() or "(none)"


def fill_keys(apps, schema_editor):
    ApprovalRequest = apps.get_model("approvals", "ApprovalRequest")
    Assignee = apps.get_model("approvals", "Assignee")
    batch = []
    for approval in ApprovalRequest.objects.only("pk", "requester_email").iterator(BATCH):
        approval.requester_key = _key(emails.person, approval.requester_email)
        batch.append(approval)
        if len(batch) == BATCH:
            ApprovalRequest.objects.bulk_update(batch, ["requester_key"])
            batch = []
    ApprovalRequest.objects.bulk_update(batch, ["requester_key"])
    batch = []
    for assignee in Assignee.objects.exclude(email="").only("pk", "email").iterator(BATCH):
        assignee.email_key = _key(emails.canonical, assignee.email)
        batch.append(assignee)
        if len(batch) == BATCH:
            Assignee.objects.bulk_update(batch, ["email_key"])
            batch = []
    Assignee.objects.bulk_update(batch, ["email_key"])


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0012_remove_sign_in_throttle"),
    ]

    operations = [
        migrations.AddField(
            model_name="approvalrequest",
            name="requester_key",
            field=models.CharField(
                default="",
                help_text="The requester as a person (`approvals.emails.person`): whom the rule "
                "'never your own request' compares.",
                max_length=254,
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="assignee",
            name="email_key",
            field=models.CharField(
                blank=True,
                help_text="The mailbox (`approvals.emails.canonical`) that decides; empty for a "
                "group.",
                max_length=254,
            ),
        ),
        migrations.AlterField(
            model_name="decision",
            name="decided_by",
            field=models.EmailField(
                help_text="The person who decided, by their mailbox "
                "(`approvals.emails.canonical`).",
                max_length=254,
            ),
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
    ]
