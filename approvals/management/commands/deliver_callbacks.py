"""The periodic pass: send the callbacks that are due and record expired requests.

Run once per invocation (a Cloud Run job triggered by Cloud Scheduler), or with --loop (`make run`
runs it beside the app). Any number of passes may run at once, beside the app's own first
attempts: each callback is claimed before it is sent, so it goes out once (`approvals.delivery`).
"""

from django.core.management.base import BaseCommand

from approvals import delivery, services
from approvals.management import passes


class Command(BaseCommand):
    help = (
        "Send every callback that is due, once, and record the expiry of requests past their "
        "deadline; then exit 0 (--loop: keep going, also past a pass that failed)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--loop", action="store_true", help="Keep running, pausing between passes."
        )
        parser.add_argument(
            "--pause", type=float, default=5.0, help="Seconds between passes with --loop."
        )

    def handle(self, *args, loop=False, pause=5.0, verbosity=1, **options):
        def one_pass():
            attempted = 0
            while batch := delivery.send_due():
                attempted += batch
            expired = services.expire_overdue()
            if verbosity:
                self.stdout.write(
                    f"Attempted {attempted} callback(s); recorded {expired} expired request(s)."
                )

        passes.run(one_pass, job="deliver_callbacks", loop=loop, pause=pause)
