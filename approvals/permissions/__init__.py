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

A person who handed a request on to someone else (`services.reassign`) may no longer decide it,
however else it names them; the one they handed it to is named by an assignee row of their own.
Request administrators (`approvals.reassign_approvalrequest`) may hand on any open request that
is not their own, and see every open request (`capacity.reassign_capacity`).

"Having had their say" counts both names of a decision: a person who decided, for themselves or
for someone else, and a person someone decided for, have each had theirs. So N approvals always
come from N different people.

Everyone else named is compared mailbox to mailbox (`approvals.emails.canonical`): a person's
e-mail is their account's in that form (`user_email`), and requests store the forms beside the
addresses they were given, so the queries compare canonical to canonical as well.

Where each part lives (one definition each, as `django.contrib.auth` keeps permissions in one
place and lets everything else ask):

- `people`: what an account is to the rules: its mailbox and groups, the decide permission,
  auditing, and the delegations in force.
- `rules`: each rule about an approval, its SQL and Python forms side by side in the leaves,
  everything larger composed from them once.
- `capacity`: the check on one loaded approval (may this person decide it, as whom, and if not,
  why), for the page, the form handler and `services.decide`.
- `queries`: the same rules over many: the inbox, visibility, an API caller's requests, and the
  people who may decide (for the e-mails and the page).

Callers import this package and use the names below; the modules are its inside.
"""

from approvals.permissions.capacity import (
    Capacity,
    HandingOn,
    closed_message,
    decider_capacity,
    decision_refusal,
    new_decider,
    reassign_capacity,
    standing_refusal,
)
from approvals.permissions.people import (
    AUDIT_PERMISSION,
    DECIDE_PERMISSION,
    REASSIGN_PERMISSION,
    group_names,
    is_auditor,
    may_approve_at_all,
    may_use_admin,
    user_email,
)
from approvals.permissions.queries import (
    Decider,
    accounts_with_email,
    can_see,
    deciders,
    deciders_of_many,
    possible_decider_count,
    requests_asked_by,
    requests_awaiting,
    requests_of_caller,
    requests_visible,
    rounds,
    visible_rounds,
)

__all__ = [
    "AUDIT_PERMISSION",
    "DECIDE_PERMISSION",
    "REASSIGN_PERMISSION",
    "Capacity",
    "Decider",
    "HandingOn",
    "accounts_with_email",
    "can_see",
    "closed_message",
    "decider_capacity",
    "deciders",
    "deciders_of_many",
    "decision_refusal",
    "group_names",
    "is_auditor",
    "may_approve_at_all",
    "may_use_admin",
    "new_decider",
    "possible_decider_count",
    "reassign_capacity",
    "requests_asked_by",
    "requests_awaiting",
    "requests_of_caller",
    "requests_visible",
    "rounds",
    "standing_refusal",
    "user_email",
    "visible_rounds",
]
