"""May this person decide this approval now, as whom, and if not, why: the check on one approval.

The page, the form handler and `services.decide` (under the row lock) ask here. The verdict is
`rules.standings`, the same rules the inbox query is built from (`queries.requests_awaiting`);
this module adds only the words, checking the parts of those rules one by one, in the order a
person is told why not.
"""

from dataclasses import dataclass

from approvals.models import ApprovalRequest, Decision, Status
from approvals.permissions import rules
from approvals.permissions.people import Person, delegators_of, signed_in
from approvals.permissions.rules import Facts


@dataclass(frozen=True)
class Capacity:
    """Whether a person may decide a request now, and for whom.

    `refusal` says why not (None when they may); `on_behalf_of` is the delegator's e-mail when
    they would decide as a delegate, "" when they decide as themselves.
    """

    refusal: str | None
    on_behalf_of: str = ""


NAMES_OTHERS = "This request is assigned to other people."


def decider_capacity(user, approval: ApprovalRequest) -> Capacity:
    """May `user` decide `approval` now, and as whom? The rules of `approvals.permissions`."""
    if not approval.is_open:
        return Capacity(closed_message(approval))
    refusal, person, facts = _person_refusal(user, approval)
    if refusal:
        return Capacity(refusal)
    if rules.had_say(person).holds(facts):
        decision = facts.said[person.email]
        return Capacity(_said(decision, person.email) + _still_needed(approval))
    for delegator, rule in rules.standings(person, delegators_of(person)):
        if rule.holds(facts):
            return Capacity(None, on_behalf_of=delegator.email if delegator else "")
    return Capacity(NAMES_OTHERS)


def standing_refusal(user, approval: ApprovalRequest) -> str | None:
    """Why `user` may not decide `approval` whatever its state: they asked for it, may not
    decide at all, or it names neither them nor anyone they stand in for. None when they could,
    and only its state may stop them (closed, or their say given: `decider_capacity` says which).

    The API answers this 403 before the state's 409: someone who could never decide a request
    hears that, not that it is closed.
    """
    refusal, person, facts = _person_refusal(user, approval)
    if refusal:
        return refusal
    if rules.had_say(person).holds(facts):
        return None
    for delegator in [None, *delegators_of(person)]:
        rule = rules.in_line(person, delegator)
        if delegator is not None:
            rule = rule & ~rules.asked_by(delegator)
        if rule.holds(facts):
            return None
    return NAMES_OTHERS


def _person_refusal(user, approval: ApprovalRequest) -> tuple[str | None, Person | None, Facts]:
    """Why `user` may not decide `approval`, whatever it names and whatever its state; with the
    person and the approval's facts, read once, for the checks that follow."""
    if not signed_in(user):
        return "Sign in to decide this request.", None, None
    person = Person.of(user)
    if not person.email:
        return (
            "Your account has no e-mail address, so your decision could not be attributed.",
            person,
            None,
        )
    facts = Facts.of(approval)
    if rules.asked_by(person).holds(facts):
        return "You asked for this approval, so you cannot decide it yourself.", person, facts
    if not person.approver:
        return "You do not have permission to decide approval requests.", person, facts
    return None, person, facts


def decision_refusal(user, approval: ApprovalRequest) -> str | None:
    """Why `user` may not decide `approval` now, or None when they may."""
    return decider_capacity(user, approval).refusal


def _said(decision: Decision, email: str) -> str:
    """What to tell the person with the mailbox `email` about the say `decision` gave them."""
    if not decision.on_behalf_of:
        return f"You already {decision.outcome_done} this request."
    if rules.mailbox(decision.on_behalf_of) == email:
        return f"{decision.decided_by} already {decision.outcome_done} this request on your behalf."
    return f"You already {decision.outcome_done} this request on behalf of {decision.on_behalf_of}."


def _still_needed(approval: ApprovalRequest) -> str:
    missing = approval.approvals_missing
    if missing:
        return f" It waits for {missing} more approval(s) from other people."
    return ""


def closed_message(approval: ApprovalRequest) -> str:
    """What people are told about a request that can no longer be decided."""
    status = approval.effective_status
    if status == Status.EXPIRED:
        return "This request expired before anyone decided it."
    if status == Status.CANCELLED:
        return "This request was cancelled by the workflow that asked for it."
    decision = approval.final_decision
    if decision is not None:
        return f"This request was already {decision.outcome_done} by {decision.decided_by}."
    return f"This request is {approval.get_effective_status_display().lower()}."
