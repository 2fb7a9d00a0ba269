"""Delegations ("out of office"): one person decides for another for a while.

Each function runs in one transaction; the person named is told once the row is stored.
"""

import datetime
import logging

from django.db import transaction
from django.utils import timezone

from approvals import permissions, wire
from approvals.models import Delegation
from approvals.notify import notices

logger = logging.getLogger(__name__)

# How far ahead a delegation may reach: a standing proxy for longer is a role, not an absence.
DELEGATION_MAX_REACH = datetime.timedelta(days=365)


class DelegationRefused(Exception):
    """The delegation was not recorded; the message says why, `field` which input it is about."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def delegate(
    delegator,
    stand_in,
    ends_at: datetime.datetime,
    starts_at: datetime.datetime | None = None,
    note: str = "",
) -> Delegation:
    """Record that `stand_in` decides for `delegator` from `starts_at` (now if None or past)
    until `ends_at`; raise DelegationRefused when the rules forbid it.

    Both must be able to decide requests at all (`permissions.may_approve_at_all`): a delegate
    who could not decide for themselves could not decide for anyone, and someone who cannot
    decide has nothing to hand on. A start in the past becomes now, so the record never claims
    that someone could act for another before they were named.
    """
    _check_people(delegator, stand_in)
    now = timezone.now()
    starts_at = max(starts_at or now, now)
    _check_period(starts_at, ends_at, now)
    with transaction.atomic():
        delegation = Delegation.objects.create(
            delegator=delegator,
            delegate=stand_in,
            starts_at=starts_at,
            ends_at=ends_at,
            note=note.strip(),
            created_at=now,
        )
        # A person cannot stand in for someone without knowing it; told once the row is stored.
        notices.tell_delegate(delegation)
    logger.info(
        "%s delegated to %s from %s until %s",
        permissions.user_email(delegator),
        permissions.user_email(stand_in),
        wire.iso_utc(starts_at),
        wire.iso_utc(ends_at),
        extra={"json_fields": _delegation_fields(delegation)},
    )
    return delegation


def _check_people(delegator, stand_in) -> None:
    """DelegationRefused unless both may decide requests and they are two people."""
    if not permissions.may_approve_at_all(delegator):
        raise DelegationRefused(
            "You may not decide approval requests, so you have nothing to delegate."
        )
    if stand_in.pk == delegator.pk:
        raise DelegationRefused("You cannot name yourself as your delegate.", field="delegate")
    if not permissions.may_approve_at_all(stand_in):
        raise DelegationRefused(
            f"{permissions.user_email(stand_in) or stand_in.get_username()} may not decide "
            "approval requests, so they cannot stand in for you.",
            field="delegate",
        )


def _check_period(starts_at: datetime.datetime, ends_at: datetime.datetime, now) -> None:
    """DelegationRefused unless the period ends in the future, after it starts, within reach."""
    if ends_at <= now:
        raise DelegationRefused("The end must be in the future.", field="ends_at")
    if ends_at <= starts_at:
        raise DelegationRefused("The end must come after the start.", field="ends_at")
    if ends_at > now + DELEGATION_MAX_REACH:
        raise DelegationRefused("A delegation must end within a year from now.", field="ends_at")


def end_delegation(delegation_id, delegator) -> Delegation | None:
    """End `delegator`'s delegation now; return it, or None if it was over already.

    Raises Delegation.DoesNotExist for an unknown id or someone else's delegation. The row is
    kept, with `ended_early_at` set. One in force ends now (`ends_at` = now). One that has not
    begun is withdrawn: its end moves back to its planned start, an empty window that is never
    in force; its planned end goes to the log.
    """
    with transaction.atomic():
        delegation = (
            Delegation.objects.select_for_update()
            .select_related("delegator", "delegate")
            .get(pk=delegation_id, delegator=delegator)
        )
        now = timezone.now()
        if delegation.ends_at <= now:
            return None
        planned = {
            "planned_starts_at": wire.iso_utc(delegation.starts_at),
            "planned_ends_at": wire.iso_utc(delegation.ends_at),
        }
        withdrawn = delegation.starts_at >= now
        delegation.ends_at = delegation.starts_at if withdrawn else now
        delegation.ended_early_at = now
        delegation.save(update_fields=["ends_at", "ended_early_at"])
    logger.info(
        "%s %s the delegation to %s",
        permissions.user_email(delegation.delegator),
        "withdrew" if withdrawn else "ended",
        permissions.user_email(delegation.delegate),
        extra={
            "json_fields": {**_delegation_fields(delegation), **planned, "withdrawn": withdrawn}
        },
    )
    return delegation


def was_withdrawn(delegation: Delegation) -> bool:
    """Ended before it began (see `end_delegation`): nobody could ever act under it."""
    return bool(delegation.ended_early_at and delegation.ends_at == delegation.starts_at)


def _delegation_fields(delegation: Delegation) -> dict:
    return {
        "delegation_id": delegation.pk,
        "delegator": permissions.user_email(delegation.delegator),
        "delegate": permissions.user_email(delegation.delegate),
        "starts_at": wire.iso_utc(delegation.starts_at),
        "ends_at": wire.iso_utc(delegation.ends_at),
    }
