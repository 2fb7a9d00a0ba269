"""Create the "Approvers" group holding the permission to decide approval requests."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Approvers"


def create_approvers_group(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make sure ours exists now.
    app_config = apps.get_app_config("approvals")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(
        Permission.objects.get(
            codename="decide_approvalrequest", content_type__app_label="approvals"
        )
    )


def remove_approvers_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_approvers_group, remove_approvers_group)]
