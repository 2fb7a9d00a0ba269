"""The signed decision links in the deciders' mails, and what opening one allows.

A link is signed with the app's secret key and names one request, one person and one outcome. It
works only for that person, signed in, and only while the request is open: `open_link` checks all
of it, so an expired, decided or cancelled request's links stop working at once. The token is in
the query string, which Django's request logging leaves out; it is never logged here either.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.urls import reverse

from approvals import permissions
from approvals.models import ApprovalRequest, Outcome

SALT = "approvals.email-decision"
# Only an outer bound: requests live at most a year; what ends a link is its request closing.
LINK_MAX_AGE = timedelta(days=366)

INVALID_LINK = (
    "This link is not valid: it may have been cut short or changed on its way. "
    "Open the request from your inbox instead."
)
OTHER_REQUEST = "This link belongs to another request. Open the request from your inbox instead."
OTHER_PERSON = (
    "This link was e-mailed to someone else, so it does not work while you are signed in as "
    "{email}. Sign out and sign in as the person it was sent to, or open the request from your "
    "inbox."
)
NO_SUCH_REQUEST = "There is no such request any more."


class LinkRefused(Exception):
    """The link may not be used; `message` says why, `status` is the page's HTTP status, and
    `approval` is shown with it when the person may see it."""

    def __init__(self, message: str, status: int, approval: ApprovalRequest | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.approval = approval


@dataclass(frozen=True)
class DecisionLink:
    approval: ApprovalRequest
    outcome: Outcome


def decision_token(approval: ApprovalRequest, user, outcome: str) -> str:
    """The signed part of a decision link: this request, this person, this outcome."""
    return signing.dumps(
        {"r": str(approval.pk), "u": user.pk, "o": Outcome(outcome).value}, salt=SALT
    )


def decision_url(approval: ApprovalRequest, user, outcome: str) -> str:
    return link(approval, decision_token(approval, user, outcome))


def link(approval: ApprovalRequest, token: str) -> str:
    path = reverse("approvals:email-decision", args=[approval.pk])
    return f"{settings.APPROVALS_BASE_URL}{path}?{urlencode({'token': token})}"


def open_link(token: str, request_id: uuid.UUID, user) -> DecisionLink:
    """What a decision link lets the signed-in `user` do, or LinkRefused with why not.

    Refused: a link whose signature does not hold (400), made for another request (400) or for
    another person (403); a request that is no longer open, because it was decided, cancelled or
    ran out of time (410); a person who may no longer decide it (403).
    """
    try:
        data = signing.loads(token, salt=SALT, max_age=LINK_MAX_AGE)
        link_request_id = uuid.UUID(data["r"])
        user_id = int(data["u"])
        outcome = Outcome(data["o"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        # BadSignature includes SignatureExpired: past the outer bound, the request is closed too.
        raise LinkRefused(INVALID_LINK, 400) from None
    if link_request_id != request_id:
        raise LinkRefused(OTHER_REQUEST, 400)
    if user_id != user.pk:
        raise LinkRefused(OTHER_PERSON.format(email=user.email or user.get_username()), 403)
    approval = (
        ApprovalRequest.objects.filter(pk=request_id)
        .prefetch_related("assignees", "decisions")
        .first()
    )
    if approval is None:
        raise LinkRefused(NO_SUCH_REQUEST, 410)
    refusal = permissions.decision_refusal(user, approval)
    if refusal:
        shown = approval if permissions.can_see(user, approval) else None
        raise LinkRefused(refusal, 410 if not approval.is_open else 403, shown)
    return DecisionLink(approval, outcome)
