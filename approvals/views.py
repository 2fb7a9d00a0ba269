"""The manager's pages: the inbox, a request's page and the decision it posts.

Thin: who may do what is `permissions`, what a decision changes is `services`.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from . import permissions, services
from .forms import DecisionForm
from .models import ApprovalRequest, DeliveryStatus

INBOX_PAGE_SIZE = 50

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
    waiting = permissions.requests_awaiting(request.user).order_by("created_at", "pk")
    page = Paginator(waiting, INBOX_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "approvals/inbox.html",
        {"page": page, "may_decide": request.user.has_perm(permissions.DECIDE_PERMISSION)},
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
        },
        status=status,
    )


@login_required
def detail(request, request_id):
    return _render_detail(request, _visible_request(request.user, request_id))


@login_required
@require_POST
def decide(request, request_id):
    approval = _visible_request(request.user, request_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Your decision was not recorded: see below.")
        return _render_detail(request, approval, form, status=400)
    try:
        decision = services.decide(
            approval.pk, request.user, form.cleaned_data["outcome"], form.cleaned_data["comment"]
        )
    except services.DecisionRefused:
        # The page's notice says why (it is asked again); keep what the person typed.
        comment = form.cleaned_data["comment"].strip()
        message = "Your decision was not recorded."
        if comment:
            message += f" Your comment was: “{comment}”"
        messages.error(request, message)
        return _render_detail(request, _visible_request(request.user, request_id), status=409)
    approval.refresh_from_db(fields=["delivery_status", "delivery_last_error"])
    messages.success(request, f"You {decision.outcome} “{approval.title}”.")
    level, news = DELIVERY_NEWS.get(
        approval.delivery_status, DELIVERY_NEWS[DeliveryStatus.RETRYING]
    )
    messages.add_message(request, level, news.format(error=approval.delivery_last_error))
    return redirect("approvals:inbox")
