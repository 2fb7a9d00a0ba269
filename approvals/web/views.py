"""The manager's pages: the inbox, a request's page, the decisions they post, and "out of office".

Thin: who may do what is `permissions`, what a decision changes is `services`.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q, prefetch_related_objects
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals import details, inputs, permissions, services
from approvals.models import (
    DELIVERY_WORDS,
    ApprovalRequest,
    Assignee,
    Delegation,
    DeliveryStatus,
    Status,
    active_delegation_q,
    failure_words,
)
from approvals.notify import links
from approvals.web import inbox as inbox_queries
from approvals.web.forms import (
    BulkDecisionForm,
    DecisionForm,
    DelegationForm,
    InboxForm,
    ReassignForm,
)

# What the person who decided is told about the callback's first attempt (`DELIVERY_WORDS`).
DELIVERY_NEWS = {
    status: (messages.DEFAULT_LEVELS[words.level], words.news)
    for status, words in DELIVERY_WORDS.items()
    if words.news
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
            "may_decide": permissions.may_approve_at_all(request.user),
            "bulk_form": BulkDecisionForm(),
        },
        status=200 if valid else 400,
    )


NOT_VISIBLE = "There is no such request, or it is not yours to see."


def _visible_approval(user, approval_id) -> ApprovalRequest:
    # The details are read apart, as `details.readable` reads them: whatever their depth.
    approval = (
        ApprovalRequest.objects.filter(pk=approval_id)
        .defer("details")
        .prefetch_related("assignees", "decisions")
        .first()
    )
    if approval is None or not permissions.can_see(user, approval):
        raise Http404(NOT_VISIBLE)
    services.expire_when_seen(approval, seen_by="page")
    return approval


def _render_detail(request, approval, *, form=None, status=200, capacity=None, reassign_form=None):
    """The request's page; `capacity` is what its viewer may do, when the caller knows it."""
    if capacity is None:
        capacity = permissions.decider_capacity(request.user, approval)
    may_reassign = permissions.reassign_capacity(request.user, approval).refusal is None
    return render(
        request,
        "approvals/detail.html",
        {
            "approval": approval,
            "details": details.readable(approval.pk),
            "refusal": capacity.refusal,
            "on_behalf_of": capacity.on_behalf_of,
            "form": form or DecisionForm(approval=approval),
            "decisions": approval.decisions.all(),
            "timeline": _timeline(approval),
            "deciders": permissions.deciders(approval),
            "assigned_to": approval.named(Assignee.Role.ASSIGNEE),
            "escalate_to": approval.named(Assignee.Role.ESCALATION),
            "rounds": permissions.visible_rounds(request.user, approval),
            "may_reassign": may_reassign,
            "reassign_form": reassign_form or ReassignForm(prefix=REASSIGN_PREFIX),
        },
        status=status,
    )


REASSIGN_PREFIX = "reassign"


@login_required
@require_POST
def reassign(request, approval_id):
    """Hand the request to another approver; refusals are shown at the field."""
    approval = _visible_approval(request.user, approval_id)
    form = ReassignForm(request.POST, prefix=REASSIGN_PREFIX)
    if not form.is_valid():
        messages.error(request, "The request was not handed on: see below.")
        return _render_detail(request, approval, reassign_form=form, status=400)
    data = form.cleaned_data
    try:
        reassigned = services.reassign(approval.pk, request.user, data["to"], data["note"])
    except services.ReassignRefused as refused:
        form.add_error("to", refused.message)
        messages.error(request, "The request was not handed on: see below.")
        approval = _visible_approval(request.user, approval_id)  # as the lock found it
        return _render_detail(request, approval, reassign_form=form, status=refused.status)
    messages.success(request, f"You handed “{approval.title}” to {reassigned.to}.")
    return redirect("approvals:detail", approval_id=approval.pk)


def _timeline(approval) -> list:
    """The request's audit events, each with `problem`: what failed, in words for people."""
    events = list(approval.audit_events.all())
    for event in events:
        event.problem = failure_words(event)
    return events


@login_required
def detail(request, approval_id):
    return _render_detail(request, _visible_approval(request.user, approval_id))


@login_required
@require_GET
def details_json(request, approval_id):
    """A request's whole details as JSON, for what its page leaves out; seen by whoever may see
    the page (the API's callers have them already: they sent them)."""
    _visible_approval(request.user, approval_id)
    response = HttpResponse(details.as_text(approval_id), content_type="application/json")
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def decide(request, approval_id):
    """Approve, reject or send back: first a confirmation naming the request and amount, then
    the decision."""
    approval = _visible_approval(request.user, approval_id)
    form = DecisionForm(request.POST, approval=approval)
    if not form.is_valid():
        messages.error(request, "Your decision was not recorded: see below.")
        return _render_detail(request, approval, form=form, status=400)
    outcome, comment = form.cleaned_data["outcome"], form.cleaned_data["comment"]
    problem = services.outcome_problem(approval, outcome)
    if problem:
        # A send back on a request that does not allow it: its page shows no such button.
        messages.error(request, f"Your decision was not recorded: {problem}")
        return _render_detail(request, approval, form=form, status=400)
    if not form.cleaned_data["confirmed"]:
        return _confirm(request, approval, form)
    try:
        decided = services.decide(approval.pk, request.user, outcome, comment, values=form.values)
    except services.DecisionRefused as refused:
        return _refused(request, refused, comment)
    return _decided(request, decided)


def _confirm(request, approval, form: DecisionForm):
    """The confirmation naming the request and amount (and the inputs given), or the page again
    (409) when its viewer may not decide it."""
    outcome, comment = form.cleaned_data["outcome"], form.cleaned_data["comment"]
    capacity = permissions.decider_capacity(request.user, approval)
    if capacity.refusal:
        _not_recorded(request, comment)
        return _render_detail(request, approval, status=409, capacity=capacity)
    return render(
        request,
        "approvals/confirm.html",
        {
            "approvals": [approval],
            "outcome": outcome,
            "comment": comment,
            "single": True,
            "on_behalf_of": capacity.on_behalf_of,
            "given": form.given(),
        },
    )


def _refused(request, refused: services.DecisionRefused, comment: str):
    """The request page again, 409, with the refusal as the service found it under the lock."""
    _not_recorded(request, comment)
    if not refused.visible:
        raise Http404(NOT_VISIBLE)
    approval = refused.approval
    # Its time may have run out since the page read it: seen now, so recorded now.
    services.expire_when_seen(approval, seen_by="page")
    prefetch_related_objects([approval], "assignees", "decisions")  # the page reads them often
    capacity = permissions.Capacity(refused.message)
    return _render_detail(request, approval, status=409, capacity=capacity)


def _not_recorded(request, comment: str) -> None:
    """Tell that the decision was refused (the page's notice says why); keep what was typed."""
    message = "Your decision was not recorded."
    if comment.strip():
        message += f" Your comment was: “{comment.strip()}”"
    messages.error(request, message)


def _decided(request, decided: services.Decided):
    """Say what was decided and what the workflow heard, then open the next waiting request."""
    decision, approval = decided.decision, decided.approval
    behalf = f" on behalf of {decision.on_behalf_of}" if decision.on_behalf_of else ""
    messages.success(request, f"You {decision.outcome_done} “{approval.title}”{behalf}.")
    if approval.status == Status.PENDING:
        # One approval of several: nothing is sent until the outcome is final.
        messages.info(
            request,
            f"It waits for {decided.approvals_missing} more approval(s) from other people; the "
            "workflow is told once the outcome is final.",
        )
    else:
        level, news = DELIVERY_NEWS.get(
            approval.delivery_status, DELIVERY_NEWS[DeliveryStatus.RETRYING]
        )
        messages.add_message(request, level, news.format(problem=approval.delivery_problem))
    following = inbox_queries.next_waiting(request.user)
    if following is None:
        return redirect("approvals:inbox")
    return redirect("approvals:detail", approval_id=following)


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
    selected = form.cleaned_data["selected"]
    chosen = permissions.requests_visible(request.user).filter(pk__in=selected)
    chosen = list(chosen.order_by("created_at", "pk"))
    outcome, comment = form.cleaned_data["outcome"], form.cleaned_data["comment"]
    if not form.cleaned_data["confirmed"]:
        return _bulk_confirm(request, chosen, outcome, comment)
    _decide_each(request, chosen, outcome, comment)
    missing = len(selected) - len(chosen)
    if missing:
        messages.warning(request, f"{missing} selected request(s) are not yours to see.")
    return redirect("approvals:inbox")


def _bulk_confirm(request, chosen: list, outcome: str, comment: str):
    """The confirmation listing the chosen requests, each that will be skipped saying why."""
    prefetch_related_objects(chosen, "assignees", "decisions")
    for approval in chosen:
        approval.refusal = permissions.decision_refusal(
            request.user, approval
        ) or inputs.bulk_refusal(approval.inputs, outcome)
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


def _decide_each(request, chosen: list, outcome: str, comment: str) -> None:
    """Decide each chosen request on its own; say which were decided and which refused, why."""
    decided, refused = [], []
    for approval in chosen:
        needs = inputs.bulk_refusal(approval.inputs, outcome)
        if needs:
            refused.append(f"“{approval.title}” ({needs})")
            continue
        try:
            services.decide(approval.pk, request.user, outcome, comment)
            decided.append(approval)
        except services.DecisionRefused as refusal:
            refused.append(f"“{approval.title}” ({refusal})")
    if decided:
        names = ", ".join(f"“{a.title}”" for a in decided)
        messages.success(request, f"You {outcome} {len(decided)} request(s): {names}.")
    if refused:
        messages.warning(request, "Not decided: " + "; ".join(refused))


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
def email_decision(request, approval_id):
    """The page an e-mail's Approve or Reject link opens: confirm (GET never decides), then POST.

    The link must be the signed-in person's own (`links.open_link`); anyone signed out is
    sent to sign in first and comes back here.
    """
    token = request.GET.get("token", "")
    try:
        link = links.open_link(token, approval_id, request.user)
    except links.LinkRefused as refused:
        if refused.approval is not None:
            services.expire_when_seen(refused.approval, seen_by="email link")
        context = {"refusal": refused.message, "approval": refused.approval}
        return render(request, "approvals/email_decision.html", context, status=refused.status)
    approval, outcome = link.approval, link.outcome
    form = DecisionForm(initial={"outcome": outcome}, approval=approval, only=outcome)
    status = 200
    if request.method == "POST":
        form = DecisionForm(
            {**request.POST.dict(), "outcome": outcome}, approval=approval, only=outcome
        )
        if form.is_valid():
            try:
                decided = services.decide(
                    approval.pk,
                    request.user,
                    outcome,
                    form.cleaned_data["comment"],
                    values=form.values,
                )
            except services.DecisionRefused as refused:
                # Someone was faster, or the request closed meanwhile: say so, decide nothing.
                shown = refused.approval if refused.visible else None
                context = {"refusal": refused.message, "approval": shown}
                return render(request, "approvals/email_decision.html", context, status=409)
            return _decided(request, decided)
        status = 400
    context = {"approval": approval, "outcome": outcome, "form": form}
    return render(request, "approvals/email_decision.html", context, status=status)


# Out of office: naming a delegate, and seeing who stands in for whom.

PAST_DELEGATIONS_SHOWN = 20


@login_required
@require_http_methods(["GET", "POST"])
def delegations(request):
    """The signed-in approver's delegations, given and held, and the form to name a delegate.

    Only approvers have anything to delegate, so others get the 403 page. Every refusal comes
    back as the page with the form's message, 400.
    """
    if not permissions.may_approve_at_all(request.user):
        raise PermissionDenied("Only approvers can name a delegate.")
    status = 200
    if request.method == "POST":
        form = DelegationForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                delegation = services.delegate(
                    request.user,
                    data["delegate"],
                    ends_at=data["ends_at"],
                    starts_at=data["starts_at"],
                    note=data["note"],
                )
            except services.DelegationRefused as refused:
                form.add_error(refused.field, str(refused))
            else:
                messages.success(request, _named_message(delegation))
                return redirect("approvals:delegations")
        messages.error(request, "Nothing was saved: see below.")
        status = 400
    else:
        form = DelegationForm(initial={"starts_at": timezone.now()})
    context = _delegations_context(request.user, form)
    return render(request, "approvals/delegations.html", context, status=status)


@login_required
@require_POST
def end_delegation(request, delegation_id):
    """End one's own delegation now (or withdraw one not begun); someone else's is a 404."""
    return end_own(
        request,
        lambda: services.end_delegation(delegation_id, request.user),
        Delegation.DoesNotExist,
        missing="There is no such delegation of yours.",
        already="That delegation had already ended.",
        done=lambda ended: f"{ended.delegate.email} no longer stands in for you.",
        back="approvals:delegations",
    )


def end_own(request, end, does_not_exist, *, missing: str, already: str, done, back: str):
    """Run `end()` on something of the signed-in person's own, and say how it went.

    `end` answers what it ended, or None when it had ended already; `does_not_exist` (someone
    else's, or none at all) is a 404 saying `missing`. Then back to the page named `back`.
    """
    try:
        ended = end()
    except does_not_exist:
        raise Http404(missing) from None
    if ended is None:
        messages.info(request, already)
    else:
        messages.success(request, done(ended))
    return redirect(back)


def _delegations_context(user, form) -> dict:
    """What the page lists: the person's delegations in force, upcoming and (the latest few)
    past, and those they hold for others; each marked when a lost permission voids it."""
    now = timezone.now()
    given = Delegation.objects.filter(delegator=user).select_related("delegate")
    # Ended: over, or ended early (a withdrawn one keeps its planned, maybe future, start).
    over = Q(ends_at__lte=now) | Q(ended_early_at__isnull=False)
    past = list(given.filter(over).order_by("-ends_at", "-pk")[:PAST_DELEGATIONS_SHOWN])
    for delegation in past:
        delegation.withdrawn = services.was_withdrawn(delegation)
    current = list(given.filter(active_delegation_q(now)).order_by("ends_at", "pk"))
    upcoming = list(given.filter(starts_at__gt=now).exclude(over).order_by("starts_at", "pk"))
    for delegation in current + upcoming:
        delegation.without_effect = not permissions.may_approve_at_all(delegation.delegate)
    held = list(
        Delegation.objects.filter(delegate=user, ends_at__gt=now, ended_early_at__isnull=True)
        .select_related("delegator")
        .order_by("starts_at", "pk")
    )
    for delegation in held:
        delegation.without_effect = not permissions.may_approve_at_all(delegation.delegator)
    return {
        "form": form,
        "current": current,
        "upcoming": upcoming,
        "past": past,
        "past_limit": PAST_DELEGATIONS_SHOWN,
        "held": held,
        "time_zone": timezone.get_current_timezone_name(),
    }


def _named_message(delegation) -> str:
    def when(moment):
        return date_format(timezone.localtime(moment), "j M Y, H:i e")

    email = delegation.delegate.email
    if delegation.is_active:
        return f"{email} stands in for you until {when(delegation.ends_at)}."
    return (
        f"{email} will stand in for you from {when(delegation.starts_at)} "
        f"until {when(delegation.ends_at)}."
    )
