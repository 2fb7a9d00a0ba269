"""The periodic e-mail pass: escalate what is due, send the due first notices and reminders,
tell the people requests were handed to, then the requesters' outcome mails
(`approvals.notify.outcome`).

Meant as a Cloud Run job triggered every minute by Cloud Scheduler, like `deliver_callbacks`: one
pass per invocation, then exit 0; or --loop to keep going (a local run), also past a pass that
failed (`approvals.management.passes`). Each e-mail is sent once,
however often or however late the job runs, and tried again later only when it could be sent to
nobody (`approvals.notify.reminders`).
"""

from approvals.management.passes import PassCommand
from approvals.notify import outcome, reminders


class Command(PassCommand):
    help = (
        "Escalate the requests whose escalation time has passed and send the first notices, the "
        "reminders and the requesters' outcome mails that are due, each once; then exit 0 "
        "(--loop: keep going, also past a pass that failed)."
    )
    pause = 30.0

    def one_pass(self) -> str:
        # Escalations first: escalation targets hear that they may now decide before a reminder
        # due in the same pass reaches them too.
        escalated = 0
        while batch := reminders.escalate_due():
            escalated += batch
        mailed = 0
        while batch := reminders.send_due_notices():
            mailed += batch
        handed = 0
        while batch := reminders.tell_handed_due():
            handed += batch
        told = 0
        while batch := outcome.send_due():
            told += batch
        said = f"E-mailed about {mailed} request(s); escalated {escalated} request(s)."
        # Each said only when there was any, so the pass's line reads as before otherwise.
        if handed:
            said += f" Told {handed} person(s) of a request handed to them."
        if told:
            said += f" Told {told} requester(s) the outcome."
        return said
