"""Create the "Auditors" group: read every request, decision and audit event, change nothing."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Auditors"
VIEW = ["view_approvalrequest", "view_decision", "view_auditevent", "view_assignee"]


def create_auditors_group(apps, schema_editor):
    app_config = apps.get_app_config("approvals")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(
        *Permission.objects.filter(codename__in=VIEW, content_type__app_label="approvals")
    )


def remove_auditors_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [("approvals", "0005_iap_identity")]

    operations = [migrations.RunPython(create_auditors_group, remove_auditors_group)]
