"""The inbox's queries: tabs, search, filters, sorting and pages that stay fast at any size.

Reads only (the selectors of the manager's pages). Pages are fetched with LIMIT/OFFSET one row
past the page, so a page costs the same number of queries however many rows match, and the
counts shown on the tabs stop at `COUNT_CAP` so they never count a whole large table.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from approvals import emails, permissions
from approvals.models import ApprovalRequest, Status, expired_q, open_q, overdue_q

PAGE_SIZE = 25
COUNT_CAP = 1000
CLOSED = [
    Status.APPROVED,
    Status.REJECTED,
    Status.CHANGES_REQUESTED,
    Status.CANCELLED,
    Status.EXPIRED,
]

TABS = {
    "waiting": "Waiting for me",
    "pending": "All pending",
    "decided": "Decided",
    "mine": "Requested by me",
}
SORTS = {
    "oldest": ("Oldest first", ["created_at", "pk"]),
    "newest": ("Newest first", ["-created_at", "-pk"]),
    "amount": ("Highest amount", ["-amount", "created_at", "pk"]),
    "time_left": ("Least time left", ["expires_at", "pk"]),
}
DECIDED_SORTS = {"newest": ["-closed_at", "-pk"], "oldest": ["closed_at", "pk"]}


def tab_queryset(user, tab: str) -> QuerySet[ApprovalRequest]:
    """The requests of one tab, before search and filters."""
    if tab == "waiting":
        return permissions.requests_awaiting(user)
    if tab == "mine":
        return permissions.requests_asked_by(user)
    visible = permissions.requests_visible(user)
    if tab == "pending":
        return visible.filter(open_q())
    # Decided: closed requests, and pending ones whose time ran out (expired, not yet recorded).
    return visible.filter(Q(status__in=CLOSED) | overdue_q())


def next_waiting(user):
    """The id of the request waiting longest for `user` (the first of "Waiting for me"), or None:
    where the page goes after a decision."""
    waiting = tab_queryset(user, "waiting").prefetch_related(None)
    return waiting.order_by(*SORTS["oldest"][1]).values_list("pk", flat=True).first()


@dataclass(frozen=True)
class Filters:
    query: str = ""
    status: str = ""
    requester: str = ""
    amount_min: object = None
    amount_max: object = None
    expiring: bool = False
    sort: str = "oldest"


def apply(queryset: QuerySet, filters: Filters, tab: str) -> QuerySet[ApprovalRequest]:
    if filters.query:
        words = filters.query.split()[:5]
        for word in words:
            queryset = queryset.filter(
                Q(title__icontains=word)
                | Q(requester_email__icontains=word)
                | Q(external_id__icontains=word)
                | Q(description__icontains=word)
            )
    if filters.status == Status.EXPIRED:
        queryset = queryset.filter(expired_q())
    elif filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.requester:
        try:
            queryset = queryset.filter(requester_key=emails.person(filters.requester))
        except emails.InvalidAddress:
            queryset = queryset.none()
    if filters.amount_min is not None:
        queryset = queryset.filter(amount__gte=filters.amount_min)
    if filters.amount_max is not None:
        queryset = queryset.filter(amount__lte=filters.amount_max)
    if filters.expiring:
        # Still open, and not for longer than a day.
        queryset = queryset.filter(open_q(), expires_at__lte=timezone.now() + timedelta(days=1))
    if tab == "decided":
        order = DECIDED_SORTS.get(filters.sort, DECIDED_SORTS["newest"])
    else:
        order = SORTS.get(filters.sort, SORTS["oldest"])[1]
    return queryset.order_by(*order)


@dataclass(frozen=True)
class Page:
    rows: list
    number: int
    has_previous: bool
    has_next: bool


def page(queryset: QuerySet, number: int) -> Page:
    """One page of rows, fetching one extra row to know whether another page follows."""
    number = max(1, number)
    start = (number - 1) * PAGE_SIZE
    rows = list(queryset.prefetch_related("assignees", "decisions")[start : start + PAGE_SIZE + 1])
    return Page(rows[:PAGE_SIZE], number, number > 1, len(rows) > PAGE_SIZE)


def capped_count(queryset: QuerySet) -> tuple[int, bool]:
    """How many rows, counting at most COUNT_CAP: (count, whether there are more)."""
    count = queryset.order_by()[: COUNT_CAP + 1].count()
    return min(count, COUNT_CAP), count > COUNT_CAP
