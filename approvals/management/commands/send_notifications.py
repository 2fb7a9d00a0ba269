"""The periodic notice pass: escalate what is due, send the due first notices and reminders,
tell the people requests were handed to and the requesters the outcome
(`approvals.notify.outcome`), then whatever else the outbox holds that is due: retries of a
channel that failed, and chat messages to update (`approvals.notify.outbox`).

Meant as a Cloud Run job triggered every minute by Cloud Scheduler, like `deliver_callbacks`: one
pass per invocation, then exit 0; or --loop to keep going (a local run), also past a pass that
failed (`approvals.management.passes`). Each notice is sent once on each channel, however often
or however late the job runs, and tried again later on a channel that failed.
"""

from approvals.management.passes import PassCommand
from approvals.notify import outbox, outcome, reminders


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
        # Last: whatever the steps above queued and could not send at once, every retry that is
        # due, and the chat messages to update after decisions (`approvals.notify.outbox`).
        retried = 0
        while batch := outbox.send_due():
            retried += batch
        said = f"E-mailed about {mailed} request(s); escalated {escalated} request(s)."
        # Each said only when there was any, so the pass's line reads as before otherwise.
        if handed:
            said += f" Told {handed} person(s) of a request handed to them."
        if told:
            said += f" Told {told} requester(s) the outcome."
        if retried:
            said += f" Sent {retried} other notice(s)."
        return said
