"""Queries compare the canonical forms now: index them, and never store a request without one."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0013_canonical_emails"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="approvalrequest", name="approval_requester"),
        migrations.AddIndex(
            model_name="approvalrequest",
            index=models.Index(fields=["requester_key", "status"], name="approval_requester_key"),
        ),
        migrations.RemoveIndex(model_name="assignee", name="assignee_email"),
        migrations.AddIndex(
            model_name="assignee",
            index=models.Index(fields=["email_key", "request"], name="assignee_email_key"),
        ),
        migrations.AddConstraint(
            model_name="approvalrequest",
            constraint=models.CheckConstraint(
                condition=~models.Q(requester_key=""), name="approval_has_a_requester_key"
            ),
        ),
        migrations.AddConstraint(
            model_name="assignee",
            constraint=models.CheckConstraint(
                condition=models.Q(email="", email_key="")
                | (~models.Q(email="") & ~models.Q(email_key="")),
                name="assignee_email_has_a_key",
            ),
        ),
    ]
