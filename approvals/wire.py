"""What goes over the wire: the API's answers and the callback body, dates.

Shapes only: every value comes from the request and its decisions as they are stored; no
decision about state is taken here. The final decision's fields are spelled once
(`final_decision`), for the API's state answer and the callback body alike.
"""

from datetime import UTC, datetime

from django.conf import settings
from django.http import JsonResponse
from django.urls import reverse

from approvals.models import ApprovalRequest


def iso_utc(moment: datetime | None) -> str | None:
    """A moment as the contract writes it: UTC, whole seconds, `Z`."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def error(status: int, message: str, fields: dict | None = None, headers: dict | None = None):
    """An error answer in the API's one shape: `{"error": ..., "fields": {...}}`."""
    body = {"error": message}
    if fields:
        body["fields"] = fields
    response = JsonResponse(body, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def page_url(approval: ApprovalRequest) -> str:
    """Where people decide on the request, as the API and the e-mails point to it."""
    return settings.APPROVALS_BASE_URL + reverse("approvals:detail", args=[approval.pk])


def registered(approval: ApprovalRequest) -> dict:
    """The answer to a registration: the fields every answer about a request starts with."""
    return {
        "id": str(approval.pk),
        "status": approval.effective_status,
        "url": page_url(approval),
        "expires_at": iso_utc(approval.expires_at),
    }


def final_decision(approval: ApprovalRequest, missing: str | None) -> dict:
    """The final decision's fields; `missing` stands for a name or comment not yet given."""
    decision = approval.final_decision
    if decision is None:
        return {"decided_by": missing, "decided_at": None, "comment": missing, "on_behalf_of": None}
    return {
        "decided_by": decision.decided_by,
        "decided_at": iso_utc(decision.decided_at),
        "comment": decision.comment,
        "on_behalf_of": decision.on_behalf_of or None,
    }


def final_inputs(approval: ApprovalRequest) -> dict:
    """The values the final decision gave for the inputs it asked for; `{}` when none (or while
    the request is open)."""
    decision = approval.final_decision
    return dict(decision.inputs) if decision is not None else {}


def decision_list(approval: ApprovalRequest) -> list[dict]:
    """Every decision on a request, oldest first, as the callback and the API show them."""
    return [
        {
            "decided_by": decision.decided_by,
            "on_behalf_of": decision.on_behalf_of or None,
            "decision": decision.outcome,
            "comment": decision.comment,
            "decided_at": iso_utc(decision.decided_at),
        }
        for decision in approval.decisions.all()
    ]


def state(approval: ApprovalRequest) -> dict:
    """A request's state as the API answers it (contract: "GET /api/approvals/{id}")."""
    return {
        **registered(approval),
        **final_decision(approval, missing=None),
        "required_approvals": approval.required_approvals,
        "decisions": decision_list(approval),
        "inputs": final_inputs(approval),
        "escalates_at": iso_utc(approval.escalates_at),
        "delivery": {
            "status": approval.delivery_status,
            "attempts": approval.delivery_attempts,
            "last_error": approval.delivery_last_error or None,
        },
    }


def callback_body(approval: ApprovalRequest) -> dict:
    """The JSON the workflow receives (contract: "The callback the workflow receives").

    The final decision is the last approval, or the rejection; `decisions` lists every decision
    in order, so a workflow that asked for several approvals sees all of them.
    """
    final = final_decision(approval, missing="")
    # The contract's order: the comment first, after the decision it explains.
    return {
        "request_id": str(approval.pk),
        "decision": approval.status,
        "comment": final.pop("comment"),
        **final,
        "decisions": decision_list(approval),
        "inputs": final_inputs(approval),
    }
