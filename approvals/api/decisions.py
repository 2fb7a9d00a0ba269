"""Deciding through the API with a personal token: what awaits me, and my decision (contract:
"Deciding through the API (people and bots)").

A person's token reaches the same rules as the request page: `permissions` says who may see and
decide what, `services.decide` records the decision with its audit event and queues the callback.
A decision is checked in the contract's order: the token (401, and 403 for a workflow's
credentials), then whether the person may see the request (404), may decide it at all (403),
whether it is still theirs to decide (409), and only then the body (415, 413, 400).
"""

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import Q
from django.http import JsonResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt

from approvals import inputs, permissions, services, wire
from approvals.api import views
from approvals.identity import callers
from approvals.models import ApprovalRequest, Outcome
from approvals.wire import error

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
LIST_PARAMETERS = {"awaiting", "limit", "cursor"}
DECISION_FIELDS = {"decision", "comment", "inputs"}
INVALID_BODY = "The request body is not valid."


@csrf_exempt
def collection(request):
    """`/api/approvals`: GET lists what awaits a person, POST registers (`views.approvals`)."""
    if request.method == "GET":
        return awaiting(request)
    if request.method == "POST":
        return views.approvals(request)
    return error(405, "Use GET or POST.", headers={"Allow": "GET, POST"})


# --- GET /api/approvals?awaiting=me ------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    limit: int
    after: tuple[datetime, uuid.UUID] | None


@views.api_view("GET", kinds=callers.PEOPLE)
def awaiting(request, caller):
    """The open requests the person may decide now, oldest first, a page at a time."""
    listing, problems = _listing(request.GET)
    if problems:
        return error(400, "The query is not valid.", problems)
    rows = permissions.requests_awaiting(caller.user).order_by("created_at", "pk")
    if listing.after is not None:
        created_at, pk = listing.after
        rows = rows.filter(Q(created_at__gt=created_at) | Q(created_at=created_at, pk__gt=pk))
    found = list(rows.prefetch_related("decisions")[: listing.limit + 1])
    page = found[: listing.limit]
    following = None
    if len(found) > listing.limit:
        query = {"awaiting": "me", "cursor": _cursor(page[-1])}
        if "limit" in request.GET:
            query["limit"] = listing.limit
        following = f"{settings.APPROVALS_BASE_URL}{reverse('approvals:api-approvals')}?"
        following += urlencode(query)
    return JsonResponse({"results": [wire.state(approval) for approval in page], "next": following})


def _listing(query) -> tuple[Listing | None, dict[str, list[str]]]:
    """The listing the query string asks for, or the problems, one list per parameter."""
    problems = {name: ["Unknown parameter."] for name in query if name not in LIST_PARAMETERS}
    problems.update(
        {name: ["Give it once."] for name in LIST_PARAMETERS if len(query.getlist(name)) > 1}
    )
    if query.get("awaiting") != "me":
        problems.setdefault("awaiting", ["Required, and `me` is the only value: awaiting=me."])
    limit = query.get("limit", str(DEFAULT_LIMIT))
    # Length first: int() refuses a string of over 4,300 digits with a ValueError.
    if not (
        len(limit) <= 3 and limit.isascii() and limit.isdigit() and 1 <= int(limit) <= MAX_LIMIT
    ):
        problems.setdefault("limit", [f"A whole number from 1 to {MAX_LIMIT}."])
    after = None
    if "cursor" in query:
        after = _after(query["cursor"])
        if after is None:
            problems.setdefault("cursor", ["Not a cursor this API gave: use the `next` link."])
    return (None, problems) if problems else (Listing(int(limit), after), {})


def _cursor(approval: ApprovalRequest) -> str:
    """Where the next page starts: after this request, in the list's order (opaque to callers)."""
    moment = approval.created_at.astimezone(UTC).isoformat(timespec="microseconds")
    return base64.urlsafe_b64encode(f"{moment}|{approval.pk}".encode()).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, uuid.UUID] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        moment, pk = raw.split("|")
        after = datetime.fromisoformat(moment), uuid.UUID(pk)
    except (ValueError, binascii.Error, UnicodeError):
        return None
    return after if after[0].tzinfo is not None else None


# --- POST /api/approvals/<id>/decision ---------------------------------------------------------


@dataclass(frozen=True)
class DecisionBody:
    outcome: str
    comment: str
    values: dict


class InvalidDecision(Exception):
    def __init__(self, fields: dict[str, list[str]], message: str = INVALID_BODY):
        super().__init__(message)
        self.message = message
        self.fields = fields


@views.api_view("POST", kinds=callers.PEOPLE)
def decision(request, caller, approval_id):
    """The person's decision on a request: 200 with its state after, or why not."""
    approval = _visible(caller.user, approval_id)
    if approval is None:
        return error(404, views.NO_SUCH_REQUEST)
    refused = _refusal(caller.user, approval)
    if refused:
        return refused
    data, problem = views._json_body(request)
    if problem:
        return problem
    try:
        body = parse_decision(data, approval)
    except InvalidDecision as invalid:
        return error(400, invalid.message, invalid.fields)
    try:
        decided = services.decide(
            approval.pk,
            caller.user,
            body.outcome,
            body.comment,
            values=body.values,
            via={"channel": "api", "token": caller.token_prefix},
        )
    except services.InputsRefused as invalid:
        # Checked already against the same specs; kept for a body that changed meaning meanwhile.
        return error(400, INVALID_BODY, _input_fields(invalid.errors))
    except services.DecisionRefused as lost:
        # Someone was faster, or the request closed, between the check above and the lock.
        approval = _visible(caller.user, approval_id)
        if approval is None:
            return error(404, views.NO_SUCH_REQUEST)
        return _refusal(caller.user, approval) or _conflict(approval, str(lost))
    return JsonResponse(wire.state(decided.approval))


def _visible(user, approval_id) -> ApprovalRequest | None:
    """The request with this id if the person may see it (the request page's rule)."""
    found = permissions.requests_visible(user).filter(pk=approval_id)
    return found.prefetch_related("assignees", "decisions").first()


def _refusal(user, approval: ApprovalRequest):
    """403 when the request is not the person's to decide whatever its state
    (`permissions.standing_refusal`), 409 when it is closed or they had their say; None when
    they may decide it."""
    reason = permissions.decider_capacity(user, approval).refusal
    if reason is None:
        return None
    standing = permissions.standing_refusal(user, approval)
    if standing:
        return error(403, standing)
    return _conflict(approval, reason)


def _conflict(approval: ApprovalRequest, reason: str):
    """409 with the request's state, as a cancel that came too late answers."""
    services.expire_when_seen(approval, seen_by="api")
    return JsonResponse({"error": reason, **wire.state(approval)}, status=409)


def parse_decision(data, approval: ApprovalRequest) -> DecisionBody:
    """The decision a body asks for on `approval`; InvalidDecision names each field that is
    wrong (an input's as `inputs.<name>`)."""
    specs = approval.inputs
    if not isinstance(data, dict):
        raise InvalidDecision({}, "The request body must be a JSON object.")
    problems = {name: ["Unknown field."] for name in data if name not in DECISION_FIELDS}
    outcome = data.get("decision")
    if not isinstance(outcome, str) or outcome not in Outcome.values:
        problems["decision"] = ["Required: approved, rejected or changes_requested."]
    elif services.outcome_problem(approval, outcome):
        # A send back where the registration did not allow it (the page shows no button).
        problems["decision"] = [services.outcome_problem(approval, outcome)]
    comment = "" if data.get("comment") is None else data["comment"]
    problem = _comment_problem(comment, outcome)
    if problem:
        problems["comment"] = [problem]
    values = _input_values(data.get("inputs"), specs, outcome, problems)
    if problems:
        raise InvalidDecision(problems)
    return DecisionBody(outcome, comment, values)


def _input_values(given, specs: list[dict], outcome, problems: dict) -> dict:
    """The values for the inputs the decision asks for (`approvals.inputs.clean`, the page's
    rules); their problems go into `problems`, each under `inputs.<name>`."""
    given = {} if given is None else given
    if not isinstance(given, dict):
        problems["inputs"] = ["Must be an object."]
        return {}
    if not inputs.asked(specs, outcome):
        if given:
            problems["inputs"] = ["This decision asks for no inputs: send {} or leave it out."]
        return {}
    try:
        return inputs.clean(specs, outcome, given)
    except inputs.InvalidInputs as invalid:
        problems.update(_input_fields(invalid.errors))
        return {}


def _input_fields(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    return {f"inputs.{name}": messages for name, messages in errors.items()}


def _comment_problem(comment, outcome) -> str | None:
    """The page's rules for a comment (`web.forms.DecisionForm`): text, its length, and one is
    needed to reject (`services.comment_problem`, the one home of that rule)."""
    if not isinstance(comment, str):
        return "Must be a string."
    return services.comment_text_problem(comment) or services.comment_problem(outcome, comment)
