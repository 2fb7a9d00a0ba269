"""The manager's pages: the inbox, a request's page, and the decisions they post.

Thin: who may do what is `permissions`, what a decision changes is `services`.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from . import inbox as inbox_queries
from . import notifications, permissions, services
from .forms import BulkDecisionForm, DecisionForm, InboxForm
from .models import ApprovalRequest, DeliveryStatus

# What the person who decided is told about the callback's first attempt.
DELIVERY_NEWS = {
    DeliveryStatus.DELIVERED: (messages.INFO, "The workflow has received your decision."),
    DeliveryStatus.RETRYING: (
        messages.WARNING,
        "Your decision is stored, but the workflow could not be told yet ({error}). "
        "It will be sent again automatically.",
    ),
    DeliveryStatus.GONE: (
        messages.WARNING,
        "The workflow no longer waits for this decision (its execution has ended). "
        "Your decision is stored here.",
    ),
    DeliveryStatus.FAILED: (
        messages.ERROR,
        "Your decision is stored, but the callback failed ({error}) and will not be retried "
        "automatically. Tell an administrator.",
    ),
}


@login_required
def inbox(request):
    form = InboxForm(request.GET)
    valid = form.is_valid()
    tab = (form.cleaned_data.get("tab") if valid else None) or "waiting"
    filters = form.filters()
    rows = inbox_queries.apply(inbox_queries.tab_queryset(request.user, tab), filters, tab)
    page = inbox_queries.page(rows, (form.cleaned_data.get("page") if valid else None) or 1)
    tabs = [
        (key, label, *inbox_queries.capped_count(inbox_queries.tab_queryset(request.user, key)))
        for key, label in inbox_queries.TABS.items()
    ]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "approvals/inbox.html",
        {
            "form": form,
            "tab": tab,
            "tabs": tabs,
            "page": page,
            "query": query.urlencode(),
            "filtered": any(
                request.GET.get(name)
                for name in ("q", "status", "requester", "amount_min", "amount_max", "expiring")
            ),
            "may_decide": request.user.has_perm(permissions.DECIDE_PERMISSION),
            "bulk_form": BulkDecisionForm(),
        },
        status=200 if valid else 400,
    )


def _visible_request(user, request_id) -> ApprovalRequest:
    found = (
        ApprovalRequest.objects.filter(pk=request_id)
        .prefetch_related("assignees", "decisions")
        .first()
    )
    if found is None or not permissions.can_see(user, found):
        raise Http404("There is no such request, or it is not yours to see.")
    if found.is_expired and services.expire(found.pk, seen_by="page"):
        found.refresh_from_db()
    return found


def _render_detail(request, approval, form=None, status=200):
    refusal = permissions.decision_refusal(request.user, approval)
    return render(
        request,
        "approvals/detail.html",
        {
            "approval": approval,
            "refusal": refusal,
            "form": form or DecisionForm(),
            "decisions": approval.decisions.all(),
            "timeline": approval.audit_events.all(),
            "deciders": permissions.deciders(approval) if approval.is_open else [],
        },
        status=status,
    )


@login_required
def detail(request, request_id):
    return _render_detail(request, _visible_request(request.user, request_id))


@login_required
@require_POST
def decide(request, request_id):
    """Approve or reject: first a confirmation naming the request and amount, then the decision."""
    approval = _visible_request(request.user, request_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Your decision was not recorded: see below.")
        return _render_detail(request, approval, form, status=400)
    outcome, comment = form.cleaned_data["outcome"], form.cleaned_data["comment"]
    if not form.cleaned_data["confirmed"]:
        if permissions.decision_refusal(request.user, approval):
            return _refused(request, request_id, comment)
        return render(
            request,
            "approvals/confirm.html",
            {"approvals": [approval], "outcome": outcome, "comment": comment, "single": True},
        )
    try:
        decision = services.decide(approval.pk, request.user, outcome, comment)
    except services.DecisionRefused:
        return _refused(request, request_id, comment)
    return _decided(request, approval, decision)


def _decided(request, approval, decision):
    """Say what was decided and what the workflow heard, then open the next waiting request."""
    approval.refresh_from_db(fields=["delivery_status", "delivery_last_error"])
    messages.success(request, f"You {decision.outcome} “{approval.title}”.")
    level, news = DELIVERY_NEWS.get(
        approval.delivery_status, DELIVERY_NEWS[DeliveryStatus.RETRYING]
    )
    messages.add_message(request, level, news.format(error=approval.delivery_last_error))
    return _next_waiting(request)


def _refused(request, request_id, comment: str):
    """The request page again, 409: its notice says why (asked anew); keep what was typed."""
    message = "Your decision was not recorded."
    if comment.strip():
        message += f" Your comment was: “{comment.strip()}”"
    messages.error(request, message)
    return _render_detail(request, _visible_request(request.user, request_id), status=409)


def _next_waiting(request):
    """After a decision, the next request waiting for this person, oldest first."""
    following = permissions.requests_awaiting(request.user).order_by("created_at", "pk").first()
    if following is None:
        return redirect("approvals:inbox")
    return redirect("approvals:detail", request_id=following.pk)


@login_required
@require_POST
def bulk_decide(request):
    """Decide several waiting requests at once: each gets its own decision and callback."""
    form = BulkDecisionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Nothing was decided: {error}")
        return redirect("approvals:inbox")
    outcome, comment = form.cleaned_data["outcome"], form.cleaned_data["comment"]
    chosen = list(
        permissions.requests_visible(request.user)
        .filter(pk__in=form.cleaned_data["selected"])
        .prefetch_related("assignees", "decisions")
        .order_by("created_at", "pk")
    )
    if not form.cleaned_data["confirmed"]:
        for approval in chosen:
            approval.refusal = permissions.decision_refusal(request.user, approval)
        decidable = [a for a in chosen if not a.refusal]
        return render(
            request,
            "approvals/confirm.html",
            {
                "approvals": chosen,
                "decidable": decidable,
                "totals": _totals(decidable),
                "outcome": outcome,
                "comment": comment,
                "single": False,
            },
        )
    decided, refused = [], []
    for approval in chosen:
        try:
            services.decide(approval.pk, request.user, outcome, comment)
            decided.append(approval)
        except services.DecisionRefused as refusal:
            refused.append(f"“{approval.title}” ({refusal})")
    missing = len(form.cleaned_data["selected"]) - len(chosen)
    if decided:
        names = ", ".join(f"“{a.title}”" for a in decided)
        messages.success(request, f"You {outcome} {len(decided)} request(s): {names}.")
    if refused:
        messages.warning(request, "Not decided: " + "; ".join(refused))
    if missing:
        messages.warning(request, f"{missing} selected request(s) are not yours to see.")
    return redirect("approvals:inbox")


def _totals(approvals) -> list[tuple[str, object]]:
    """Sum of the amounts per currency, for the bulk confirmation."""
    totals: dict[str, object] = {}
    for approval in approvals:
        if approval.amount is not None:
            totals[approval.currency] = totals.get(approval.currency, 0) + approval.amount
    return sorted(totals.items())


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def email_decision(request, request_id):
    """The page an e-mail's Approve or Reject link opens: confirm (GET never decides), then POST.

    The link must be the signed-in person's own (`notifications.open_link`); anyone signed out is
    sent to sign in first and comes back here.
    """
    token = request.GET.get("token", "")
    try:
        link = notifications.open_link(token, request_id, request.user)
    except notifications.LinkRefused as refused:
        if refused.request is not None and refused.request.is_expired:
            services.expire(refused.request.pk, seen_by="email link")
        context = {"refusal": refused.message, "approval": refused.request}
        return render(request, "approvals/email_decision.html", context, status=refused.status)
    approval, outcome = link.request, link.outcome
    form = DecisionForm(initial={"outcome": outcome})
    status = 200
    if request.method == "POST":
        form = DecisionForm({"outcome": outcome, "comment": request.POST.get("comment", "")})
        if form.is_valid():
            try:
                decision = services.decide(
                    approval.pk, request.user, outcome, form.cleaned_data["comment"]
                )
            except services.DecisionRefused as refused:
                # Someone was faster, or the request closed meanwhile: say so, decide nothing.
                approval.refresh_from_db()
                context = {"refusal": str(refused), "approval": approval}
                return render(request, "approvals/email_decision.html", context, status=409)
            return _decided(request, approval, decision)
        status = 400
    context = {"approval": approval, "outcome": outcome, "form": form}
    return render(request, "approvals/email_decision.html", context, status=status)
