"""The rules as queries over many: the inbox, visibility, an API caller's requests, the deciders.

Over approvals, each query filters on a rule's `q` (`permissions.rules`), so the inbox never
shows a request whose buttons the server would then refuse. Over people (`deciders`, whom to
e-mail; `possible_decider_count`, for registration) the direction is the other way: account
e-mails live in Django's user table, not in canonical form, so SQL only narrows the accounts to
those the approval could name and the rule itself, tested in Python on each, decides.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower, Trim

from approvals import emails
from approvals.models import ApprovalRequest, Assignee, open_q
from approvals.permissions import rules
from approvals.permissions.people import (
    DECIDE_PERMISSION,
    REASSIGN_PERMISSION,
    Person,
    delegations_in_force,
    delegators_of,
    is_auditor,
    signed_in,
    user_email,
)
from approvals.permissions.rules import Facts

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"

# An account e-mail in this shape, lower-cased and trimmed in SQL, is already its canonical form
# (plain ASCII dot-atom at plain ASCII labels), so SQL may compare it with a canonical form. The
# few accounts with any other e-mail are kept by every narrowing below and compared in Python.
PLAIN_EMAIL_REGEX = (
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[a-z0-9-]+(\.[a-z0-9-]+)*$"
)


def requests_awaiting(user) -> QuerySet[ApprovalRequest]:
    """The open requests `user` may decide: the inbox. The rules `decider_capacity` tests."""
    person = Person.of(user)
    if not person.approver:
        return ApprovalRequest.objects.none()
    may_decide = rules.any_of(rule for _, rule in rules.standings(person, delegators_of(person)))
    return (
        ApprovalRequest.objects.filter(open_q()).filter(may_decide.q).prefetch_related("assignees")
    )


def requests_visible(user) -> QuerySet[ApprovalRequest]:
    """Every request `user` may open, open or closed: auditors see all; others see what they
    asked for, what they may decide or could have decided (named, or standing in for someone
    named), and what they decided (`rules.sees`); request administrators also every open
    request, which they may hand on."""
    if not signed_in(user):
        return ApprovalRequest.objects.none()
    if is_auditor(user):
        return ApprovalRequest.objects.all()
    person = Person.of(user)
    visible = rules.sees(person, delegators_of(person)).q if person.email else Q(pk__in=[])
    if user.has_perm(REASSIGN_PERMISSION):
        visible |= open_q()  # a request administrator may hand on any open request
    return ApprovalRequest.objects.filter(visible)


def requests_asked_by(user) -> QuerySet[ApprovalRequest]:
    """The requests `user` asked for, open or closed: the requester as a person
    (`rules.asked_by`, the rule that keeps them from deciding their own). Always visible to them
    (`requests_visible` holds the same rule)."""
    if not signed_in(user):
        return ApprovalRequest.objects.none()
    return ApprovalRequest.objects.filter(rules.asked_by(Person.of(user, approver=False)).q)


def can_see(user, approval: ApprovalRequest) -> bool:
    """May `user` open the request's page? Asked of `requests_visible`, the one rule."""
    return requests_visible(user).filter(pk=approval.pk).exists()


def requests_of_caller(caller: str) -> QuerySet[ApprovalRequest]:
    """The requests an API caller may read, cancel and register again: those it registered.

    `caller` is `callers.Caller.name`: an invoker's canonical e-mail, or "api-token" for every
    holder of the static token. To any other caller they do not exist (README, "API").
    """
    return ApprovalRequest.objects.filter(registered_by=caller)


def rounds(approval: ApprovalRequest) -> QuerySet[ApprovalRequest]:
    """Every round of `approval`, itself included, oldest first: the requests its caller
    registered with the same `external_id` (contract: "Rounds"). A request without an external
    id is a round of its own. Registration stays keyed on the callback URL alone, so a new round
    is a new request (index `approval_rounds`)."""
    if not approval.external_id:
        return ApprovalRequest.objects.filter(pk=approval.pk)
    return (
        requests_of_caller(approval.registered_by)
        .filter(external_id=approval.external_id)
        .order_by("created_at", "pk")
    )


def visible_rounds(user, approval: ApprovalRequest) -> list[ApprovalRequest]:
    """The rounds of `approval` other than itself that `user` may open, each with its
    decisions, oldest first: what its page lists and links to."""
    found = rounds(approval).exclude(pk=approval.pk).filter(pk__in=requests_visible(user))
    return list(found.prefetch_related("decisions"))


@dataclass(frozen=True)
class Decider:
    """Someone who may decide a request now; `on_behalf_of` is set for a delegate."""

    user: object
    on_behalf_of: str = ""

    @property
    def email(self) -> str:
        return self.user.email.strip()


def deciders(approval: ApprovalRequest, role: str | None = None) -> list[Decider]:
    """The people who may decide `approval` now, delegates included: whom to e-mail and whom
    the page lists. The rules `decider_capacity` tests, in a few queries whatever the numbers.

    With `role` set to "escalation", only those the escalation newly lets decide (and their
    delegates): whom to tell when the request escalates.
    """
    return deciders_of_many([approval], role)[approval.pk]


def deciders_of_many(
    approvals: Iterable[ApprovalRequest], role: str | None = None
) -> dict[object, list[Decider]]:
    """`deciders` of each of `approvals`, by primary key, in a few queries for all of them (a
    notice pass's hundreds; prefetch their `assignees` and `decisions`)."""
    if role not in (None, Assignee.Role.ESCALATION):
        raise ValueError(f"deciders: role is None or {Assignee.Role.ESCALATION!r}, not {role!r}")
    approvals = list(approvals)
    facts = {approval.pk: Facts.of(approval) for approval in approvals if approval.is_open}
    named = dict(
        zip(facts, _named_deciders_of(list(facts.values()), role is not None), strict=True)
    )
    delegators = {person.user.pk for people in named.values() for person in people}
    delegations = [
        (delegation, Person.of(delegation.delegate))
        for delegation in delegations_in_force(delegator__in=delegators)
    ]
    result = {approval.pk: [] for approval in approvals}
    for pk, people in named.items():
        found = {person.user.pk: person for person in people}
        found_deciders = [Decider(person.user) for person in people]
        standing_in = _standing_in(facts[pk], found, delegations)
        result[pk] = sorted(found_deciders + standing_in, key=lambda d: d.email.lower())
    return result


def _named_deciders_of(
    all_facts: list[Facts], newly_by_escalation: bool = False
) -> list[list[Person]]:
    """For each of `all_facts`, the approvers who may decide as themselves (`rules.may_decide`),
    oldest account first: the approvers are read once, and each approval tests the rule on
    those its rows could name (everyone, when it names nobody)."""
    if not all_facts:
        return []
    names_everyone = [
        not newly_by_escalation and rules.names_nobody().holds(facts) for facts in all_facts
    ]
    accounts = _approvers()
    if not any(names_everyone):
        # Only those the rows name can be; narrow in SQL before the exact rule.
        accounts = _named_only(accounts, [a for facts in all_facts for a in facts.assignees])
    people = [Person.of(account, approver=True) for account in accounts]
    by_mailbox, by_group = defaultdict(list), defaultdict(list)
    for person in people:
        by_mailbox[person.email].append(person)
        for group in person.groups:
            by_group[group].append(person)
    rule = {
        person.user.pk: rules.may_decide(person, newly_by_escalation=newly_by_escalation)
        for person in people
    }
    found = []
    for facts, everyone in zip(all_facts, names_everyone, strict=True):
        if everyone:
            candidates = people
        else:  # those a row names by mailbox or group: the rule decides among them
            named = {
                person.user.pk: person
                for row in facts.assignees
                for person in (by_mailbox[row.email_key] if row.email_key else by_group[row.group])
            }
            candidates = [named[pk] for pk in sorted(named)]
        found.append([p for p in candidates if rule[p.user.pk].holds(facts)])
    return found


def _standing_in(facts: Facts, found: dict[int, Person], delegations: list) -> list[Decider]:
    """The delegates of the people `found` who may decide on their behalf (`rules.may_decide`
    with a delegator), each once, for the first of their delegators who lets them. Among
    `delegations`: (delegation, delegate) pairs of those in force, in `delegations_in_force`'s
    order."""
    result, standing = [], set()
    for delegation, delegate in delegations:
        delegator = found.get(delegation.delegator_id)
        taken = delegation.delegate_id in found or delegation.delegate_id in standing
        if delegator is None or taken:
            continue
        if rules.may_decide(delegate, delegator).holds(facts):
            standing.add(delegation.delegate_id)
            result.append(Decider(delegate.user, on_behalf_of=delegator.email))
    return result


def possible_decider_count(
    requester_email: str,
    assignee_emails: list[str],
    assignee_groups: list[str],
    escalation_emails: list[str],
    escalation_groups: list[str],
) -> int:
    """How many people could ever decide a request registered with these names: those who may
    decide it as themselves once it has escalated, before anyone has had their say (delegates
    not counted: a delegate decides for someone already counted). The addresses must have a
    canonical form (registration checked them)."""
    named = {
        Assignee.Role.ASSIGNEE: (assignee_emails, assignee_groups),
        Assignee.Role.ESCALATION: (escalation_emails, escalation_groups),
    }
    rows = []
    for role, (addresses, groups) in named.items():
        rows += [Assignee(role=role, email_key=emails.canonical(a)) for a in addresses]
        rows += [Assignee(role=role, group=group) for group in groups]
    would_be = Facts(emails.person(requester_email), tuple(rows), said={}, escalated=True)
    return len(_named_deciders_of([would_be])[0])


def _approvers() -> QuerySet:
    """Active users holding the permission, asked of Django's ModelBackend in SQL (group, direct,
    or superuser): the same answer `has_perm` gives. Their group names come along."""
    return (
        get_user_model()
        .objects.with_perm(DECIDE_PERMISSION, is_active=True, backend=MODEL_BACKEND)
        .annotate(decider_email=Lower(Trim("email")))
        .exclude(decider_email="")
        .prefetch_related("groups")
        .order_by("pk")
    )


def _mailbox_may_be(mailboxes) -> Q:
    """Accounts (annotated `decider_email`) whose e-mail may be one of `mailboxes` (canonical):
    those equal in SQL, and those SQL cannot tell; Python then compares `user_email`."""
    return Q(decider_email__in=list(mailboxes)) | ~Q(decider_email__regex=PLAIN_EMAIL_REGEX)


def _named_only(candidates: QuerySet, rows) -> QuerySet:
    """`candidates` narrowed to those `rows` could name (`rules.names`, from the accounts' side):
    by mailbox or by group."""
    mailboxes = [a.email_key for a in rows if a.email_key]
    groups = [a.group for a in rows if a.group]
    return candidates.filter(_mailbox_may_be(mailboxes) | Q(groups__name__in=groups)).distinct()


def accounts_with_email(address: str) -> list:
    """The active accounts whose e-mail is the mailbox `address` names, oldest first; none when
    `address` has no canonical form."""
    try:
        mailbox = emails.canonical(address)
    except emails.InvalidAddress:
        return []
    accounts = (
        get_user_model()
        .objects.annotate(decider_email=Lower(Trim("email")))
        .filter(_mailbox_may_be([mailbox]), is_active=True)
        .order_by("pk")
    )
    return [account for account in accounts if user_email(account) == mailbox]
