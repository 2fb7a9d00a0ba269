"""What an account is to the rules, before any approval is asked about.

Its mailbox and groups (`Person`), whether it may decide anything at all (the decide permission),
whether it audits, and whom it stands in for through a delegation in force. Kept apart from
`rules` because these are facts about one person, read once per user object and shared by every
approval asked about while it lives (a page of the inbox, a bulk decision), as `django.contrib.auth`
caches `has_perm`'s answers on the user.
"""

from dataclasses import dataclass

from django.db.models import QuerySet

from approvals import emails
from approvals.models import Delegation, active_delegation_q

DECIDE_PERMISSION = "approvals.decide_approvalrequest"
AUDIT_PERMISSION = "approvals.view_auditevent"
# Hand any open request to another approver, named or not (a request administrator).
REASSIGN_PERMISSION = "approvals.reassign_approvalrequest"


def user_email(user) -> str:
    """The mailbox of `user`'s account in canonical form; "" when it has none (no e-mail, or
    text that is not an address): such an account decides nothing."""
    try:
        return emails.canonical(getattr(user, "email", "") or "")
    except emails.InvalidAddress:
        return ""


def group_names(user) -> frozenset[str]:
    """The names of `user`'s groups, read once per user object."""
    if not hasattr(user, "_approvals_group_names"):
        names = [group.name for group in user.groups.all()] if user.is_authenticated else []
        user._approvals_group_names = frozenset(names)
    return user._approvals_group_names


def signed_in(user) -> bool:
    """An active account, signed in: the first thing every permission asks."""
    return bool(user.is_authenticated and user.is_active)


def may_approve_at_all(user) -> bool:
    """The decide permission: active, with an e-mail and the permission, so someone who could
    decide some request."""
    return bool(signed_in(user) and user_email(user) and user.has_perm(DECIDE_PERMISSION))


def is_auditor(user) -> bool:
    """Auditors read every request and the audit log (the "Auditors" group, or superusers)."""
    return signed_in(user) and user.has_perm(AUDIT_PERMISSION)


def may_use_admin(user) -> bool:
    """The admin is the auditors' view; Django also asks for staff status to enter it."""
    return is_auditor(user) and user.is_staff


@dataclass(frozen=True)
class Person:
    """A user as the rules see them: `email` their mailbox in canonical form ("" when none),
    `approver` whether they may decide at all, and, for an approver, `groups` their groups'
    names."""

    user: object
    email: str
    groups: frozenset[str]
    approver: bool

    @classmethod
    def of(cls, user, *, approver: bool | None = None) -> "Person":
        """`user` as a Person. `approver` may be given when a query has already answered it
        (`queries` asks `with_perm`, the SQL form of `has_perm`); an account without a mailbox
        is never one."""
        email = user_email(user)
        if approver is None:
            approver = may_approve_at_all(user)
        approver = bool(approver and email)
        # Groups name deciders only, so nobody else's are read.
        return cls(user, email, group_names(user) if approver else frozenset(), approver)


def delegations_in_force(**who) -> QuerySet[Delegation]:
    """The delegations in force now (`models.active_delegation_q`) matching `who`, both people
    loaded, in one fixed order: the first delegator that lets a delegate decide is the one they
    decide for."""
    return (
        Delegation.objects.filter(active_delegation_q(), **who)
        .select_related("delegator", "delegate")
        .order_by("delegator__email", "pk")
    )


def delegators_of(person: Person) -> list[Person]:
    """The people `person` stands in for now, read once per user object. Someone who may not
    decide at all stands in for nobody (`rules.in_line` says so too), so they cost no query."""
    user = person.user
    if not person.approver:
        return []
    if not hasattr(user, "_approvals_delegators"):
        found = delegations_in_force(delegate=user)
        user._approvals_delegators = [Person.of(delegation.delegator) for delegation in found]
    return user._approvals_delegators
