from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self):
        # Registers the configuration checks that `manage.py check` runs (approvals/checks.py).
        from approvals import checks  # noqa: F401
