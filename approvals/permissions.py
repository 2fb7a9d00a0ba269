"""Who may decide or see which request, and who audits: the one place that answers it.

The request page, the inbox query, the e-mails and `services.decide` all ask here, so the inbox
never shows a request whose buttons the server would then refuse.

The rules (contract, "People", and the README's "Approval policies"). A person may decide a
request while it is open when they hold `approvals.decide_approvalrequest`, are not its requester
(compared as people: `approvals.emails.person`, so no other spelling or `+tag` of the requester's
address decides), have not had their say on it yet, and either

- are *named* for it: it names no assignees, or names them or a group they belong to, or its
  escalation time has passed and its escalation targets name them or one of their groups; or
- stand in for someone named, through a delegation in force ("out of office"). The delegate
  decides on that person's behalf; the delegator must still be allowed to decide it themselves,
  the delegate must not be its requester, and delegations do not chain.

"Having had their say" counts both names of a decision: a person who decided, for themselves or
for someone else, and a person someone decided for, have each had theirs. So N approvals always
come from N different people.

Everyone else named is compared mailbox to mailbox (`approvals.emails.canonical`): a person's
e-mail is their account's in that form (`user_email`), and requests store the forms beside the
addresses they were given, so the queries below compare canonical to canonical as well.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Lower, Trim
from django.utils import timezone

from approvals import emails
from approvals.models import (
    ApprovalRequest,
    Assignee,
    Decision,
    Delegation,
    Status,
    active_delegation_q,
    open_q,
)

DECIDE_PERMISSION = "approvals.decide_approvalrequest"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def user_email(user) -> str:
    """The mailbox of `user`'s account in canonical form; "" when it has none (no e-mail, or
    text that is not an address): such an account decides nothing."""
    try:
        return emails.canonical(getattr(user, "email", "") or "")
    except emails.InvalidAddress:
        return ""


def asked_for(request: ApprovalRequest, email: str) -> bool:
    """Is the person with the mailbox `email` (canonical) the one who asked for `request`?"""
    return emails.person(email) == request.requester_key


def group_names(user) -> frozenset[str]:
    """The names of `user`'s groups, read once per user object."""
    if not hasattr(user, "_approvals_group_names"):
        names = [group.name for group in user.groups.all()] if user.is_authenticated else []
        user._approvals_group_names = frozenset(names)
    return user._approvals_group_names


def may_approve_at_all(user) -> bool:
    """Active, with an e-mail and the permission: someone who could decide some request."""
    return bool(
        user.is_authenticated
        and user.is_active
        and user_email(user)
        and user.has_perm(DECIDE_PERMISSION)
    )


@dataclass(frozen=True)
class Capacity:
    """Whether a person may decide a request now, and for whom.

    `refusal` says why not (None when they may); `on_behalf_of` is the delegator's e-mail when
    they would decide as a delegate, "" when they decide as themselves.
    """

    refusal: str | None
    on_behalf_of: str = ""


NAMES_OTHERS = "This request is assigned to other people."


def decider_capacity(user, request: ApprovalRequest) -> Capacity:
    """May `user` decide `request` now, and as whom? The rules of this module's docstring."""
    if not request.is_open:
        return Capacity(closed_message(request))
    refusal = _person_refusal(user, request)
    if refusal:
        return Capacity(refusal)
    email = user_email(user)
    said = _had_their_say(request)
    if email in said:
        return Capacity(said[email] + _still_needed(request))
    if _is_named(request, email, group_names(user)):
        return Capacity(None)
    for delegator_email in _named_delegators(user, request):
        if delegator_email not in said:
            return Capacity(None, on_behalf_of=delegator_email)
    return Capacity(NAMES_OTHERS)


def decision_refusal(user, request: ApprovalRequest) -> str | None:
    """Why `user` may not decide `request` now, or None when they may."""
    return decider_capacity(user, request).refusal


def standing_refusal(user, request: ApprovalRequest) -> str | None:
    """Why `user` may not decide `request` whatever its state: they asked for it, may not decide
    at all, or it names neither them nor anyone they stand in for. None when they could, and
    only its state may stop them (closed, or their say given: `decider_capacity` says which).

    The API answers the first 403 and checks it before the state (409): someone who could never
    decide a request hears that, not that it is closed."""
    refusal = _person_refusal(user, request)
    if refusal:
        return refusal
    email = user_email(user)
    if email in _had_their_say(request) or _is_named(request, email, group_names(user)):
        return None
    return None if any(_named_delegators(user, request)) else NAMES_OTHERS


def _person_refusal(user, request: ApprovalRequest) -> str | None:
    """Why `user` may not decide `request`, whatever it names and whatever its state."""
    if not user.is_authenticated or not user.is_active:
        return "Sign in to decide this request."
    email = user_email(user)
    if not email:
        return "Your account has no e-mail address, so your decision could not be attributed."
    if asked_for(request, email):
        return "You asked for this approval, so you cannot decide it yourself."
    if not user.has_perm(DECIDE_PERMISSION):
        return "You do not have permission to decide approval requests."
    return None


def _named_delegators(user, request: ApprovalRequest) -> Iterator[str]:
    """The mailboxes of those `user` stands in for (a delegation in force) whom `request` names
    and who could decide it themselves: approvers, not its requester."""
    for delegation in _delegations_to(user):
        delegator = delegation.delegator
        delegator_email = user_email(delegator)
        if (
            may_approve_at_all(delegator)
            and not asked_for(request, delegator_email)
            and _is_named(request, delegator_email, group_names(delegator))
        ):
            yield delegator_email


def _had_their_say(request: ApprovalRequest) -> dict[str, str]:
    """Each person who has had their say on `request` (by mailbox), with what to tell them."""
    said = {}
    for decision in request.decisions.all():
        decided_by, on_behalf_of = _mailbox(decision.decided_by), _mailbox(decision.on_behalf_of)
        if on_behalf_of:
            said[decided_by] = (
                f"You already {decision.outcome} this request on behalf of {decision.on_behalf_of}."
            )
            said[on_behalf_of] = (
                f"{decision.decided_by} already {decision.outcome} this request on your behalf."
            )
        else:
            said[decided_by] = f"You already {decision.outcome} this request."
    return said


def _mailbox(stored: str) -> str:
    """A decision's stored address in canonical form (decisions store it so since 0011; an
    earlier one as it was, lower-case)."""
    try:
        return emails.canonical(stored) if stored else ""
    except emails.InvalidAddress:
        return stored


def _still_needed(request: ApprovalRequest) -> str:
    missing = request.approvals_missing
    if missing:
        return f" It waits for {missing} more approval(s) from other people."
    return ""


def _matches(named: list[Assignee], email: str, groups: frozenset[str]) -> bool:
    return any(a.email_key == email if a.email_key else a.group in groups for a in named)


def _is_named(request: ApprovalRequest, email: str, groups: frozenset[str]) -> bool:
    """Is the person named for `request`: by its assignees (all, when it has none) or, once it
    is escalated, by its escalation targets?"""
    everyone = request.assignees.all()
    assignees = [a for a in everyone if a.role == Assignee.Role.ASSIGNEE]
    if not assignees or _matches(assignees, email, groups):
        return True
    escalation = [a for a in everyone if a.role == Assignee.Role.ESCALATION]
    return request.is_escalated and _matches(escalation, email, groups)


def _delegations_to(user) -> list[Delegation]:
    """Delegations in force that let `user` stand in for someone, read once per user object."""
    if not hasattr(user, "_approvals_delegations"):
        user._approvals_delegations = list(
            Delegation.objects.filter(active_delegation_q(), delegate=user)
            .select_related("delegator")
            .order_by("delegator__email", "pk")
        )
    return user._approvals_delegations


def closed_message(request: ApprovalRequest) -> str:
    """What people are told about a request that can no longer be decided."""
    status = request.effective_status
    if status == Status.EXPIRED:
        return "This request expired before anyone decided it."
    if status == Status.CANCELLED:
        return "This request was cancelled by the workflow that asked for it."
    decision = request.final_decision
    if decision is not None:
        return f"This request was already {decision.outcome} by {decision.decided_by}."
    return f"This request is {request.get_effective_status_display().lower()}."


# The same rules in SQL, for the inbox, the page's visibility and the e-mails.


def _named_q(email: str, groups) -> Q:
    """Requests that name the person (the SQL form of `_is_named`)."""
    assignees = Assignee.objects.filter(request=OuterRef("pk"), role=Assignee.Role.ASSIGNEE)
    escalation = Assignee.objects.filter(request=OuterRef("pk"), role=Assignee.Role.ESCALATION)
    names_them = Q(email_key=email) | Q(group__in=list(groups)) if groups else Q(email_key=email)
    return (
        ~Exists(assignees)
        | Exists(assignees.filter(names_them))
        | (Q(escalates_at__lte=timezone.now()) & Exists(escalation.filter(names_them)))
    )


def _said_q(email: str) -> Q:
    """Requests on which the person has had their say."""
    decisions = Decision.objects.filter(request=OuterRef("pk"))
    return Q(Exists(decisions.filter(Q(decided_by=email) | Q(on_behalf_of=email))))


def requests_awaiting(user) -> QuerySet[ApprovalRequest]:
    """The open requests `user` may decide: the inbox. Same rules as `decider_capacity`."""
    if not may_approve_at_all(user):
        return ApprovalRequest.objects.none()
    email = user_email(user)
    may_decide = _named_q(email, group_names(user))
    for delegation in _delegations_to(user):
        delegator = delegation.delegator
        if may_approve_at_all(delegator):
            delegator_email = user_email(delegator)
            may_decide |= (
                _named_q(delegator_email, group_names(delegator))
                & ~Q(requester_key=emails.person(delegator_email))
                & ~_said_q(delegator_email)
            )
    return (
        ApprovalRequest.objects.filter(open_q())
        .exclude(requester_key=emails.person(email))
        .exclude(_said_q(email))
        .filter(may_decide)
        .prefetch_related("assignees")
    )


@dataclass(frozen=True)
class Decider:
    """Someone who may decide a request now; `on_behalf_of` is set for a delegate."""

    user: object
    on_behalf_of: str = ""

    @property
    def email(self) -> str:
        return self.user.email.strip()


def deciders(request: ApprovalRequest, role: str | None = None) -> list[Decider]:
    """The people who may decide `request` now, delegates included: whom to e-mail and whom the
    page lists. Same rules as `decider_capacity`, in a few queries whatever the numbers.

    With `role` set to "escalation", only those named by the escalation targets (and their
    delegates): whom to tell when the request escalates.
    """
    if not request.is_open:
        return []
    said = set(_had_their_say(request))
    considered = [
        a
        for a in request.assignees.all()
        if (a.role == role if role else a.role == Assignee.Role.ASSIGNEE or request.is_escalated)
    ]
    candidates = _approvers()
    if role or any(a.role == Assignee.Role.ASSIGNEE for a in considered):
        # Only those named can be; narrow in SQL before the exact rule below.
        candidates = _named_only(candidates, considered)
    named = []
    for person in candidates:
        email = user_email(person)
        if (
            email
            and email not in said
            and not asked_for(request, email)
            and _named_by(request, email, group_names(person), role)
        ):
            named.append(person)
    found = {person.pk for person in named}
    result = [Decider(person) for person in named]
    standing_in = (
        Delegation.objects.filter(active_delegation_q(), delegator__in=found)
        .exclude(delegate__in=found)
        .select_related("delegate", "delegator")
        .order_by("delegator__email", "pk")
    )
    for delegation in standing_in:
        delegate = delegation.delegate
        email = user_email(delegate)
        if (
            delegate.pk not in found
            and email
            and email not in said
            and not asked_for(request, email)
            and may_approve_at_all(delegate)
        ):
            found.add(delegate.pk)
            result.append(Decider(delegate, on_behalf_of=user_email(delegation.delegator)))
    return sorted(result, key=lambda decider: decider.email.lower())


# An account e-mail in this shape, lower-cased and trimmed in SQL, is already its canonical form
# (plain ASCII dot-atom at plain ASCII labels), so SQL may compare it with a canonical form. The
# few accounts with any other e-mail are kept by every narrowing below and compared in Python.
PLAIN_EMAIL_REGEX = (
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[a-z0-9-]+(\.[a-z0-9-]+)*$"
)


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


def _named_only(candidates: QuerySet, named: list[Assignee]) -> QuerySet:
    """`candidates` narrowed to those `named` could name: by mailbox or by group."""
    mailboxes = [a.email_key for a in named if a.email_key]
    groups = [a.group for a in named if a.group]
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


def _named_by(request: ApprovalRequest, email: str, groups, role: str | None) -> bool:
    """Named at all (role None), or named in `role`; for escalation, only those the escalation
    newly lets decide: people already among the assignees are not "escalated to"."""
    if role is None:
        return _is_named(request, email, groups)
    everyone = request.assignees.all()
    if role == Assignee.Role.ESCALATION:
        assignees = [a for a in everyone if a.role == Assignee.Role.ASSIGNEE]
        if not assignees or _matches(assignees, email, groups):
            return False
    return _matches([a for a in everyone if a.role == role], email, groups)


def possible_decider_count(
    requester_email: str,
    assignee_emails: list[str],
    assignee_groups: list[str],
    escalation_emails: list[str],
    escalation_groups: list[str],
) -> int:
    """How many people could ever decide a request registered with these names (delegates not
    counted: a delegate decides for someone already counted). The addresses must have a
    canonical form (registration checked them)."""
    requester = emails.person(requester_email)
    people = _approvers()
    mailboxes = {emails.canonical(e) for e in assignee_emails + escalation_emails}
    groups = set(assignee_groups + escalation_groups)
    named = bool(assignee_emails or assignee_groups)
    if named:
        people = people.filter(_mailbox_may_be(mailboxes) | Q(groups__name__in=groups)).distinct()
    count = 0
    for person in people:
        email = user_email(person)
        if not email or emails.person(email) == requester:
            continue
        if not named or email in mailboxes or group_names(person) & groups:
            count += 1
    return count


def requests_of_caller(caller: str) -> QuerySet[ApprovalRequest]:
    """The requests an API caller may read, cancel and register again: those it registered.

    `caller` is `callers.Caller.name`: an invoker's canonical e-mail, or "api-token" for every
    holder of the static token. To any other caller they do not exist (README, "API").
    """
    return ApprovalRequest.objects.filter(registered_by=caller)


AUDIT_PERMISSION = "approvals.view_auditevent"


def is_auditor(user) -> bool:
    """Auditors read every request and the audit log (the "Auditors" group, or superusers)."""
    return user.is_authenticated and user.is_active and user.has_perm(AUDIT_PERMISSION)


def may_use_admin(user) -> bool:
    """The admin is the auditors' view; Django also asks for staff status to enter it."""
    return is_auditor(user) and user.is_staff


def requests_visible(user) -> QuerySet[ApprovalRequest]:
    """Every request `user` may open, open or closed: auditors see all; others see what they
    asked for, what they may decide or could have decided (named, or standing in for someone
    named), and what they decided."""
    if not user.is_authenticated or not user.is_active:
        return ApprovalRequest.objects.none()
    if is_auditor(user):
        return ApprovalRequest.objects.all()
    email = user_email(user)
    if not email:
        return ApprovalRequest.objects.none()
    visible = Q(requester_key=emails.person(email)) | _said_q(email)
    if may_approve_at_all(user):
        visible |= _named_q(email, group_names(user))
        for delegation in _delegations_to(user):
            delegator = delegation.delegator
            if may_approve_at_all(delegator):
                visible |= _named_q(user_email(delegator), group_names(delegator))
    return ApprovalRequest.objects.filter(visible)


def can_see(user, request: ApprovalRequest) -> bool:
    """May `user` open the request's page? Asked of `requests_visible`, the one rule."""
    return requests_visible(user).filter(pk=request.pk).exists()
