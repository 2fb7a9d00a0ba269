"""What a chat message about a request says, whatever the platform: its headline, the summary
lines, the buttons the person is offered, and what it says once decided. Slack's Block Kit
(`channels.slack`) and Google Chat's cards (`channels.google_chat`) only lay this out.

The buttons follow the same rules as the page's (`ApprovalRequest.outcomes`, `inputs.asked`,
`services.comment_problem`): no message offers a button the server would refuse, and a decision
that needs a comment or inputs opens a form first.
"""

from dataclasses import dataclass

from django.utils import timezone
from django.utils.timesince import timeuntil

from approvals import inputs, services, text, wire
from approvals.models import ApprovalRequest, Notice, Outcome
from approvals.notify import notices
from approvals.notify.channels.email import HEADLINES
from approvals.permissions.rules import Facts, mailbox
from approvals.templatetags.approvals_display import money

# What each button says, and how it looks on platforms that colour buttons.
LABELS = {
    Outcome.APPROVED: "Approve",
    Outcome.REJECTED: "Reject",
    Outcome.CHANGES_REQUESTED: "Send back",
}
STYLES = {Outcome.APPROVED: "primary", Outcome.REJECTED: "danger"}
HEADLINE = {
    Notice.Purpose.NEW: "{requester} asks for your approval",
    Notice.Purpose.REMINDER: "Reminder: this request still waits for your decision",
    Notice.Purpose.ESCALATION: "Escalated to you: it was not decided in time, so you may now "
    "decide it too",
    Notice.Purpose.REASSIGNED: "{handed_by} handed this request to you: you may now decide it",
}
MAX_LINE = 300  # a summary value, cut short (the page has the rest)


@dataclass(frozen=True)
class Button:
    """One decision the person is offered: `outcome`, its `label`, and whether it opens a form
    (a comment, or inputs) before deciding; `confirm` asks "are you sure?" first."""

    outcome: str
    label: str
    opens_form: bool
    style: str = ""

    @property
    def confirm(self) -> bool:
        return not self.opens_form


@dataclass(frozen=True)
class Summary:
    """A request's message: `headline`, `title`, (label, value) `lines`, `page_url`, a delegate's
    `note`, the `buttons` offered (none once decided) and, once decided, `outcome_text`."""

    headline: str
    title: str
    lines: list[tuple[str, str]]
    page_url: str
    note: str = ""
    buttons: tuple[Button, ...] = ()
    outcome_text: str = ""

    @property
    def fallback(self) -> str:
        """The message as one line of plain text (notifications, screen readers)."""
        return f"{self.headline}: {self.title}"


def buttons(approval: ApprovalRequest) -> tuple[Button, ...]:
    """The decisions offered on `approval`, in the page's order."""
    offered = []
    for outcome in approval.outcomes:
        needs_comment = services.comment_problem(outcome, "") is not None
        opens_form = needs_comment or bool(inputs.asked(approval.inputs, outcome))
        offered.append(Button(outcome, LABELS[outcome], opens_form, STYLES.get(outcome, "")))
    return tuple(offered)


def lines(approval: ApprovalRequest) -> list[tuple[str, str]]:
    """The summary's lines: requester, amount, reference, time left."""
    shown = [("Requester", approval.requester_email)]
    if approval.amount is not None:
        shown.append(("Amount", f"{money(approval.amount)} {approval.currency}".strip()))
    if approval.external_id:
        shown.append(("Reference", approval.external_id))
    if approval.is_open:
        shown.append(("Time left", timeuntil(approval.expires_at, timezone.now())))
    return [(label, _short(value)) for label, value in shown]


def about(notice: Notice) -> Summary:
    """The message of a notice to a decider, or of its update (`Purpose.UPDATE`): what it says
    now. Once the request closed, or the person had their say, it offers no button."""
    approval = notice.request
    original = notice.updates if notice.purpose == Notice.Purpose.UPDATE else notice
    handed = notices.handed(original)
    headline = HEADLINE[original.purpose].format(
        requester=approval.requester_email, handed_by=handed.handed_by if handed else "Someone"
    )
    note = ""
    if notice.on_behalf_of:
        note = f"You receive this as the delegate of {notice.on_behalf_of}."
    said = outcome_text(approval, notice.email_key)
    return Summary(
        headline=_short(headline),
        title=_short(approval.title),
        lines=lines(approval),
        page_url=wire.page_url(approval),
        note=note,
        buttons=() if said else buttons(approval),
        outcome_text=said,
    )


def outcome_text(approval: ApprovalRequest, email_key: str = "") -> str:
    """What the message says once the request closed, or once this person had their say on one
    that waits for more approvals; "" while it still waits for them."""
    if not approval.is_open:
        status = approval.effective_status
        words = HEADLINES.get(status, (status.capitalize(),))[0]
        final = approval.final_decision
        if final is None:
            return words
        said = f"{words} by {final.decided_by}"
        if final.comment:
            said += f": {_short(final.comment)}"
        return said
    said = Facts.of(approval).said.get(email_key)  # their say: given by them, or for them
    if said is None:
        return ""
    missing = approval.approvals_missing
    more = f"; waiting for {missing} more approval{'s' if missing != 1 else ''}" if missing else ""
    if mailbox(said.decided_by) != email_key:
        return f"{said.decided_by} approved on your behalf{more}"
    return f"You approved{more}"


def requester_text(approval: ApprovalRequest) -> str:
    """The requester's message once their request closed: the outcome and each decision."""
    status = approval.effective_status
    sentence = HEADLINES.get(status, (status, f"is {status}"))[1]
    said = [f"Your request {_short(approval.title)} {sentence}."]
    for decision in approval.decisions.all():
        line = f"{HEADLINES.get(decision.outcome, (decision.outcome,))[0]} by {decision.decided_by}"
        if decision.comment:
            line += f": {_short(decision.comment)}"
        said.append(line)
        said.extend(f"{name}: {value}" for name, value in decision.inputs.items())
    return "\n".join(said)


def _short(value) -> str:
    one = text.one_line(str(value))
    return one if len(one) <= MAX_LINE else one[: MAX_LINE - 1] + "…"
