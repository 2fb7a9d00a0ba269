"""Send back and rounds: `allow_changes_requested`, the status and decision `changes_requested`
(longer columns for it), and the index that finds a request's rounds."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0015_personal_tokens"),
    ]

    operations = [
        migrations.AddField(
            model_name="approvalrequest",
            name="allow_changes_requested",
            field=models.BooleanField(
                default=False,
                help_text="Deciders may send it back for changes (a new round follows).",
            ),
        ),
        migrations.AlterField(
            model_name="approvalrequest",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("approved", "Approved"),
                    ("rejected", "Rejected"),
                    ("expired", "Expired"),
                    ("cancelled", "Cancelled"),
                    ("changes_requested", "Sent back"),
                ],
                default="pending",
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("registered", "Registered"),
                    ("approved", "Approved"),
                    ("rejected", "Rejected"),
                    ("changes_requested", "Sent back"),
                    ("cancelled", "Cancelled"),
                    ("expired", "Expired"),
                    ("callback_sent", "Callback delivered"),
                    ("callback_failed", "Callback failed"),
                    ("callback_retry", "Callback retry requested"),
                    ("notified", "Deciders e-mailed"),
                    ("notify_failed", "E-mail to deciders failed"),
                    ("reminded", "Deciders reminded"),
                    ("escalated", "Escalated"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="decision",
            name="outcome",
            field=models.CharField(
                choices=[
                    ("approved", "Approve"),
                    ("rejected", "Reject"),
                    ("changes_requested", "Send back"),
                ],
                max_length=20,
            ),
        ),
        migrations.AddIndex(
            model_name="approvalrequest",
            index=models.Index(
                condition=models.Q(("external_id", ""), _negated=True),
                fields=["registered_by", "external_id", "created_at"],
                name="approval_rounds",
            ),
        ),
    ]
