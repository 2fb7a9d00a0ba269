"""Every change of state: approvals (register, decide, cancel, expire, reassign), delegations,
and a person's choice of channels.

Callers use the names below (`services.decide(...)`); each lives in one module of this package.
"""

from approvals.services.approvals import (
    AlreadyDecided,
    CallbackUrlTaken,
    Decided,
    DecisionRefused,
    InputsRefused,
    Registered,
    cancel,
    comment_problem,
    decide,
    expire,
    expire_overdue,
    expire_when_seen,
    outcome_problem,
    register,
    retry_callback,
)
from approvals.services.delegations import (
    DELEGATION_MAX_REACH,
    DelegationRefused,
    delegate,
    end_delegation,
    was_withdrawn,
)
from approvals.services.preferences import PreferenceRefused, choose_channels
from approvals.services.reassignments import Reassigned, ReassignRefused, reassign

__all__ = [
    "DELEGATION_MAX_REACH",
    "AlreadyDecided",
    "CallbackUrlTaken",
    "Decided",
    "DecisionRefused",
    "DelegationRefused",
    "InputsRefused",
    "PreferenceRefused",
    "ReassignRefused",
    "Reassigned",
    "Registered",
    "cancel",
    "choose_channels",
    "comment_problem",
    "decide",
    "delegate",
    "end_delegation",
    "expire",
    "expire_overdue",
    "expire_when_seen",
    "outcome_problem",
    "reassign",
    "register",
    "retry_callback",
    "was_withdrawn",
]
