"""The periodic pass: send the callbacks that are due and record expired requests.

Run once per invocation (a Cloud Run job triggered by Cloud Scheduler), or with --loop (`make run`
runs it beside the app), sending APPROVALS_DELIVERY_CONCURRENCY callbacks at once from threads.
Any number of passes may run at once, beside the app's own first attempts: each callback is
claimed before it is sent, so it goes out once (`approvals.delivery`).
"""

from approvals import delivery, services
from approvals.management.passes import PassCommand


class Command(PassCommand):
    help = (
        "Send every callback that is due, once, APPROVALS_DELIVERY_CONCURRENCY (default 8) at "
        "a time, and record the expiry of requests past their deadline; then exit 0 (--loop: "
        "keep going, also past a pass that failed)."
    )
    pause = 5.0

    def one_pass(self) -> str:
        attempted = delivery.send_due()
        expired = services.expire_overdue()
        return f"Attempted {attempted} callback(s); recorded {expired} expired request(s)."
