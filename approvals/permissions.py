"""Who may decide or see which request, and who audits: the one place that answers it.

The request page, the inbox query and `services.decide` all ask here, so the inbox never shows a
request whose buttons the server would then refuse. The rules (contract, "People"): a person may
decide a request when they hold `approvals.decide_approvalrequest`, are among its assignees when it
names any, are not its requester (e-mails compared without case), and the request is still open.
"""

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Lower, Trim

from .models import ApprovalRequest, Assignee, Status, open_q

DECIDE_PERMISSION = "approvals.decide_approvalrequest"


def user_email(user) -> str:
    return (getattr(user, "email", "") or "").strip().lower()


def decision_refusal(user, request: ApprovalRequest) -> str | None:
    """Why `user` may not decide `request` now, or None when they may."""
    if not request.is_open:
        return closed_message(request)
    if not user.is_authenticated or not user.is_active:
        return "Sign in to decide this request."
    email = user_email(user)
    if not email:
        return "Your account has no e-mail address, so your decision could not be attributed."
    if email == request.requester_email.lower():
        return "You asked for this approval, so you cannot decide it yourself."
    if not user.has_perm(DECIDE_PERMISSION):
        return "You do not have permission to decide approval requests."
    assignees = [assignee.email for assignee in request.assignees.all()]
    if assignees and email not in assignees:
        return "This request is assigned to other people."
    return None


def closed_message(request: ApprovalRequest) -> str:
    """What people are told about a request that can no longer be decided."""
    status = request.effective_status
    if status == Status.EXPIRED:
        return "This request expired before anyone decided it."
    if status == Status.CANCELLED:
        return "This request was cancelled by the workflow that asked for it."
    decision = request.final_decision
    if decision is not None:
        return f"This request was already {decision.outcome} by {decision.decided_by}."
    return f"This request is {request.get_effective_status_display().lower()}."


def requests_awaiting(user) -> QuerySet[ApprovalRequest]:
    """The open requests `user` may decide: the inbox. Same rules as `decision_refusal`."""
    email = user_email(user)
    if not (
        user.is_authenticated and user.is_active and email and user.has_perm(DECIDE_PERMISSION)
    ):
        return ApprovalRequest.objects.none()
    assigned_to_others = Exists(Assignee.objects.filter(request=OuterRef("pk"))) & ~Exists(
        Assignee.objects.filter(request=OuterRef("pk"), email=email)
    )
    return (
        ApprovalRequest.objects.filter(open_q())
        .exclude(requester_email=email)
        .exclude(assigned_to_others)
        .prefetch_related("assignees")
    )


def deciders(request: ApprovalRequest) -> QuerySet:
    """The people who may decide `request` now: whom to e-mail. Same rules as `decision_refusal`.

    The permission is asked of Django's ModelBackend in SQL (group, direct, or superuser, and
    active), the same answer `has_perm` gives; e-mails are compared trimmed and without case.
    """
    users = get_user_model()
    if not request.is_open:
        return users.objects.none()
    people = (
        users.objects.with_perm(
            DECIDE_PERMISSION, is_active=True, backend="django.contrib.auth.backends.ModelBackend"
        )
        .annotate(decider_email=Lower(Trim("email")))
        .exclude(decider_email="")
        .exclude(decider_email=request.requester_email.lower())
    )
    assignees = [assignee.email for assignee in request.assignees.all()]
    if assignees:
        people = people.filter(decider_email__in=assignees)
    return people


AUDIT_PERMISSION = "approvals.view_auditevent"


def is_auditor(user) -> bool:
    """Auditors read every request and the audit log (the "Auditors" group, or superusers)."""
    return user.is_authenticated and user.is_active and user.has_perm(AUDIT_PERMISSION)


def may_use_admin(user) -> bool:
    """The admin is the auditors' view; Django also asks for staff status to enter it."""
    return is_auditor(user) and user.is_staff


def requests_visible(user) -> QuerySet[ApprovalRequest]:
    """Every request `user` may open, open or closed: the query form of `can_see`."""
    if not user.is_authenticated or not user.is_active:
        return ApprovalRequest.objects.none()
    if is_auditor(user):
        return ApprovalRequest.objects.all()
    email = user_email(user)
    own = Q(requester_email=email) if email else Q(pk__in=[])
    if not user.has_perm(DECIDE_PERMISSION):
        return ApprovalRequest.objects.filter(own)
    has_assignees = Exists(Assignee.objects.filter(request=OuterRef("pk")))
    assigned_to_me = Exists(Assignee.objects.filter(request=OuterRef("pk"), email=email))
    return ApprovalRequest.objects.filter(own | ~has_assignees | assigned_to_me)


def can_see(user, request: ApprovalRequest) -> bool:
    """People who may open a request's page: its possible deciders, its requester, auditors."""
    if not user.is_authenticated or not user.is_active:
        return False
    if is_auditor(user):
        return True
    email = user_email(user)
    if email and email == request.requester_email.lower():
        return True
    if not user.has_perm(DECIDE_PERMISSION):
        return False
    assignees = [assignee.email for assignee in request.assignees.all()]
    return not assignees or email in assignees
