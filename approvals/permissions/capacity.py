"""May this person decide this approval now, as whom, and if not, why: the check on one approval.

The page, the form handler and `services.decide` (under the row lock) ask here. The verdict is
`rules.standings`, the same rules the inbox query is built from (`queries.requests_awaiting`);
this module adds only the words, checking the parts of those rules one by one, in the order a
person is told why not. Handing a request on (`reassign_capacity`, `new_decider`) is asked here
too, from the same rules.
"""

from dataclasses import dataclass

from approvals import emails
from approvals.models import ApprovalRequest, Decision, Status
from approvals.permissions import rules
from approvals.permissions.people import (
    DECIDE_PERMISSION,
    REASSIGN_PERMISSION,
    Person,
    delegators_of,
    signed_in,
    user_email,
)
from approvals.permissions.queries import accounts_with_email
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
HANDED_ON = "You handed this request on to someone else, so it is no longer yours to decide."


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
    if rules.handed_on(person).holds(facts):
        return Capacity(HANDED_ON)
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


@dataclass(frozen=True)
class HandingOn:
    """Whether a person may hand a request on to another approver (`services.reassign`), and
    in which capacity: `refusal` says why not; `in_place` is True when they hand on their own
    place as a decider, False when they reassign it as a request administrator."""

    refusal: str | None
    in_place: bool = False


def reassign_capacity(user, approval: ApprovalRequest) -> HandingOn:
    """May `user` hand `approval` on now? Whoever may decide it as themselves may (their place
    goes to the new person); a request administrator (`people.REASSIGN_PERMISSION`) may hand on
    any open request that is not their own. A delegate may not: the place is their delegator's."""
    capacity = decider_capacity(user, approval)
    if capacity.refusal is None and not capacity.on_behalf_of:
        return HandingOn(None, in_place=True)
    if not approval.is_open:
        return HandingOn(capacity.refusal)
    if signed_in(user) and user.has_perm(REASSIGN_PERMISSION):
        _refusal, person, facts = _person_refusal(user, approval)
        if facts is not None and not rules.asked_by(person).holds(facts):
            return HandingOn(None)
    if capacity.on_behalf_of:
        return HandingOn(
            f"You decide this request for {capacity.on_behalf_of}; only they can hand it on."
        )
    return HandingOn(capacity.refusal)


def new_decider(address: str, user, approval: ApprovalRequest) -> tuple[str | None, object]:
    """The account `user` may hand `approval` to at `address`, or why not: (refusal, account).

    The new person is an active account with that mailbox (`emails.canonical`), holds the
    decide permission, is neither `user` nor the requester, and has not had their say on it."""
    try:
        mailbox = emails.canonical(address)
    except emails.InvalidAddress:
        return "Enter the e-mail address of the person to hand it to.", None
    if mailbox == user_email(user):
        return "That is you: enter someone else's e-mail address.", None
    accounts = accounts_with_email(mailbox)
    if not accounts:
        return f"Nobody with an active account has the e-mail address {address}.", None
    approvers = [account for account in accounts if account.has_perm(DECIDE_PERMISSION)]
    if not approvers:
        return f"{address} may not decide approval requests (no decide permission).", None
    account = approvers[0]
    person, facts = Person.of(account), Facts.of(approval)
    if rules.asked_by(person).holds(facts):
        return f"{address} asked for this approval, so they cannot decide it.", None
    if rules.had_say(person).holds(facts):
        return f"{address} has already had their say on this request.", None
    return None, account


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
