"""Each rule about who may decide or see an approval, defined once, in both of its forms.

A `Rule` is built with its two forms side by side: `q`, a `Q` on `ApprovalRequest` for the
queries over many (`permissions.queries`: the inbox, visibility), and `holds(facts)`, the same
condition tested on one loaded approval (`permissions.capacity`: the page, the form handler and
`services.decide`; `queries.deciders`: the e-mails). The leaves below are the only places where
a condition is spelled twice, once per form, next to each other; every larger rule (`named`,
`may_decide`, `sees`) is composed from them with `&`, `|` and `~`, so it has one definition and
both forms follow from it. `tests/test_policies.py` checks, for every user across the policy
shapes, that the two forms of each rule agree.

The person side of a rule (mailbox, groups, the decide permission, delegations in force) is in
`permissions.people`; the approval side is read once into `Facts`.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from approvals import emails
from approvals.models import ApprovalRequest, Assignee, Decision
from approvals.permissions.people import Person


@dataclass(frozen=True)
class Facts:
    """What the rules read of one approval, loaded once: its requester (`emails.person`), the
    rows naming its assignees and escalation targets, who has had their say (mailbox: the
    decision that gave it), and whether its escalation time has passed."""

    requester_key: str
    assignees: tuple[Assignee, ...]
    said: dict[str, Decision]
    escalated: bool

    @classmethod
    def of(cls, approval: ApprovalRequest) -> "Facts":
        """The facts of a stored approval (prefetch `assignees` and `decisions` for many)."""
        said = {}
        for decision in approval.decisions.all():
            # Both names of a decision have had their say: who decided, and for whom.
            for stored in (decision.decided_by, decision.on_behalf_of):
                if stored:
                    said[mailbox(stored)] = decision
        return cls(
            approval.requester_key, tuple(approval.assignees.all()), said, approval.is_escalated
        )


def mailbox(stored: str) -> str:
    """A decision's stored address in canonical form (decisions store it so since 0011; an
    earlier one as it was, lower-case)."""
    try:
        return emails.canonical(stored)
    except emails.InvalidAddress:
        return stored


@dataclass(frozen=True, eq=False)
class Rule:
    """A condition on an approval in its two forms: `query()` builds the `Q` (lazily, so a rule
    tested in Python never builds SQL), `test(facts)` tests one loaded approval."""

    query: Callable[[], Q]
    test: Callable[[Facts], bool]

    @property
    def q(self) -> Q:
        return self.query()

    def holds(self, facts: Facts) -> bool:
        return self.test(facts)

    def __and__(self, other: "Rule") -> "Rule":
        if self is NEVER or other is NEVER:
            return NEVER
        return Rule(lambda: self.q & other.q, lambda facts: self.test(facts) and other.test(facts))

    def __or__(self, other: "Rule") -> "Rule":
        if self is NEVER:
            return other
        if other is NEVER:
            return self
        return Rule(lambda: self.q | other.q, lambda facts: self.test(facts) or other.test(facts))

    def __invert__(self) -> "Rule":
        return Rule(lambda: ~self.q, lambda facts: not self.test(facts))


# What a rule is for someone it can never hold for (no mailbox, no permission): `&` and `|` drop
# it, so their queries carry no subquery that could only be false.
NEVER = Rule(lambda: Q(pk__in=[]), lambda facts: False)


def any_of(rules: Iterable[Rule]) -> Rule:
    """Any of `rules` holds (NEVER when there are none)."""
    combined = NEVER
    for rule in rules:
        combined = combined | rule
    return combined


# --- The leaves: each condition in its two forms, side by side ----------------------------------


def _rows(role: str):
    return Assignee.objects.filter(request=OuterRef("pk"), role=role)


def names_nobody() -> Rule:
    """It names no assignees (escalation targets alone do not count): everyone is named."""
    return Rule(
        lambda: ~Q(Exists(_rows(Assignee.Role.ASSIGNEE))),
        lambda facts: not any(a.role == Assignee.Role.ASSIGNEE for a in facts.assignees),
    )


def names(role: str, person: Person) -> Rule:
    """Group match: one of its rows in `role` names the person, by their mailbox or by a group
    they belong to (a row names one or the other, never both: `models.Assignee`)."""
    email, groups = person.email, person.groups
    if not email and not groups:
        return NEVER
    # An account without a mailbox must not match the group rows' empty `email_key`.
    them = Q(email_key=email) if email else Q(pk__in=[])
    if groups:
        them |= Q(group__in=sorted(groups))
    return Rule(
        lambda: Q(Exists(_rows(role).filter(them))),
        lambda facts: any(
            a.role == role and (a.email_key == email if a.email_key else a.group in groups)
            for a in facts.assignees
        ),
    )


def handed_on(person: Person) -> Rule:
    """Reassigned away: the person handed it on to someone else (a "handed on" row with their
    mailbox, `services.reassign`), so they may no longer decide it, however else it names them."""
    email = person.email
    if not email:
        return NEVER
    return Rule(
        lambda: Q(Exists(_rows(Assignee.Role.HANDED_ON).filter(email_key=email))),
        lambda facts: any(
            a.role == Assignee.Role.HANDED_ON and a.email_key == email for a in facts.assignees
        ),
    )


def escalated() -> Rule:
    """Its escalation time has passed (`ApprovalRequest.is_escalated`), told or not yet."""
    return Rule(lambda: Q(escalates_at__lte=timezone.now()), lambda facts: facts.escalated)


def asked_by(person: Person) -> Rule:
    """Requester: the person asked for it, compared as people (`emails.person`, so no other
    spelling or `+tag` of the requester's address escapes it)."""
    if not person.email:
        return NEVER
    key = emails.person(person.email)
    return Rule(lambda: Q(requester_key=key), lambda facts: facts.requester_key == key)


def had_say(person: Person) -> Rule:
    """One say per person: they decided it, for themselves or for someone else, or someone
    decided it for them. So N approvals always come from N different people."""
    email = person.email
    if not email:
        return NEVER
    return Rule(
        lambda: Q(
            Exists(
                Decision.objects.filter(request=OuterRef("pk")).filter(
                    Q(decided_by=email) | Q(on_behalf_of=email)
                )
            )
        ),
        lambda facts: email in facts.said,
    )


# --- The rules, composed from the leaves ---------------------------------------------------------


def named(person: Person, *, newly_by_escalation: bool = False) -> Rule:
    """Named decider: it names no assignees, or names the person or one of their groups among
    them, or, once its escalation time has passed, among its escalation targets; and they have
    not handed it on (a reassignment: the new person is named by an assignee row of their own).

    With `newly_by_escalation`, only those the escalation adds: named by the escalation targets
    and not already by the assignees (whom to tell when it escalates).
    """
    by_assignees = names_nobody() | names(Assignee.Role.ASSIGNEE, person)
    by_escalation = escalated() & names(Assignee.Role.ESCALATION, person)
    if newly_by_escalation:
        return ~by_assignees & by_escalation & ~handed_on(person)
    return (by_assignees | by_escalation) & ~handed_on(person)


def free_to_decide(person: Person) -> Rule:
    """Neither its requester nor someone who has had their say on it."""
    return ~asked_by(person) & ~had_say(person)


def in_line(
    person: Person, delegator: Person | None = None, *, newly_by_escalation: bool = False
) -> Rule:
    """It is theirs to decide, whatever has been said: the person may decide at all (the decide
    permission) and is named for it, or, standing in for `delegator` through a delegation in
    force, the delegator may decide at all and is named for it themselves (the delegation rule:
    the delegate decides what the delegator may; delegations do not chain)."""
    principal = delegator or person
    if not (person.approver and principal.approver):
        return NEVER
    return named(principal, newly_by_escalation=newly_by_escalation)


def may_decide(
    person: Person, delegator: Person | None = None, *, newly_by_escalation: bool = False
) -> Rule:
    """The person may decide it now, as themselves or on `delegator`'s behalf: in line for it,
    and neither of them is its requester or has had their say. (Whether it is still open is
    the model's rule, `ApprovalRequest.is_open` and `models.open_q`.)"""
    rule = free_to_decide(person) & in_line(
        person, delegator, newly_by_escalation=newly_by_escalation
    )
    return rule & free_to_decide(delegator) if delegator else rule


def standings(person: Person, delegators: list[Person]) -> list[tuple[Person | None, Rule]]:
    """For whom the person could decide an approval, in the order it is asked: themselves
    (None), then each of `delegators` (`people.delegators_of`), each with its rule."""
    return [(None, may_decide(person))] + [(d, may_decide(person, d)) for d in delegators]


def sees(person: Person, delegators: list[Person]) -> Rule:
    """Visibility, beyond auditors (`queries.requests_visible`): they asked for it, had their
    say on it, handed it on, or it is in line for them, as themselves or standing in for
    someone."""
    in_line_for_them = any_of(in_line(person, d) for d in [None, *delegators])
    return asked_by(person) | had_say(person) | handed_on(person) | in_line_for_them
