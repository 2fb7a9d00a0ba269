"""Deciding from a chat message: the person behind a chat account, and the one service call.

Slack and Google Chat both end here, so a decision from chat follows the same rules as the page
(`services.decide`, which checks `permissions.decider_capacity` under the row lock) and is
audited the same way, with `via` naming the channel. Whatever stops a decision comes back as a
sentence for the person (`Reply`), never as silence: no app user with their e-mail, the requester
themselves, no permission, already decided, closed, inputs not valid.
"""

import uuid
from dataclasses import dataclass, field

from approvals import permissions, services
from approvals.models import Outcome

NO_ACCOUNT = (
    "No Approver account has the e-mail address {email}, so nothing was decided. Ask an "
    "administrator to add you, or decide on the request's page."
)
NO_EMAIL = (
    "Your {platform} profile shows no e-mail address, so Approver cannot tell who you are and "
    "nothing was decided. Decide on the request's page instead."
)
NO_SUCH_REQUEST = "There is no such request."


@dataclass(frozen=True)
class Reply:
    """What to tell the person: `ok` when it was decided; `text` in either case; `errors` by
    input name (or "comment") when what they typed is not valid, for the form to show."""

    ok: bool
    text: str
    errors: dict[str, list[str]] = field(default_factory=dict)
    decided: services.Decided | None = None


def account(email: str, platform: str):
    """The app user a chat account's e-mail names (the canonical e-mail rule:
    `permissions.accounts_with_email`), or a Reply saying why there is none."""
    if not email:
        return Reply(False, NO_EMAIL.format(platform=platform))
    found = permissions.accounts_with_email(email)
    if not found:
        return Reply(False, NO_ACCOUNT.format(email=email))
    return found[0]


def request_id(value) -> uuid.UUID | None:
    """The request a button or form names, or None when it names none (a forged value)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def decide(approval_id, user, outcome: str, comment: str, values: dict | None, via: dict) -> Reply:
    """Decide as `user` through `services.decide`; the Reply says what happened."""
    if approval_id is None or outcome not in Outcome.values:
        return Reply(False, NO_SUCH_REQUEST)
    problem = services.comment_text_problem(comment) or services.comment_problem(
        outcome, comment.strip()
    )
    if problem:
        return Reply(False, problem, errors={"comment": [problem]})
    try:
        decided = services.decide(approval_id, user, outcome, comment, values=values or {}, via=via)
    except services.InputsRefused as refused:
        return Reply(False, refused.message, errors=refused.errors)
    except services.DecisionRefused as refused:
        return Reply(False, refused.message)
    return Reply(True, said(decided), decided=decided)


def said(decided: services.Decided) -> str:
    """The sentence confirming a decision."""
    words = {
        "approved": "You approved",
        "rejected": "You rejected",
        "changes_requested": "You sent back",
    }[decided.decision.outcome]
    text = f"{words} {decided.approval.title}."
    if decided.approvals_missing:
        missing = decided.approvals_missing
        text += f" It waits for {missing} more approval{'s' if missing != 1 else ''}."
    return text
