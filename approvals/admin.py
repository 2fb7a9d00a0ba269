"""The auditor's view: requests, their decisions and the audit log, read in the Django admin.

Decisions and audit events are read-only here: the admin never writes to the record.
"""

from django.contrib import admin, messages

from . import permissions, services
from .models import (
    ApprovalRequest,
    Assignee,
    AuditEvent,
    Decision,
    DeliveryStatus,
    Status,
    expired_q,
    open_q,
)


class ReadOnly:
    """The admin shows the record to auditors (`permissions.is_auditor`); it never writes it."""

    def has_view_permission(self, request, obj=None):
        return permissions.is_auditor(request.user)

    def has_module_permission(self, request):
        return permissions.may_use_admin(request.user)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(ReadOnly, admin.TabularInline):
    extra = 0
    show_change_link = False


class AssigneeInline(ReadOnlyInline):
    model = Assignee
    fields = ["email"]
    readonly_fields = fields


class DecisionInline(ReadOnlyInline):
    model = Decision
    fields = ["outcome", "decided_by", "comment", "decided_at"]
    readonly_fields = fields


class AuditEventInline(ReadOnlyInline):
    model = AuditEvent
    fields = ["at", "kind", "actor", "payload"]
    readonly_fields = fields


class EffectiveStatusFilter(admin.SimpleListFilter):
    """Status as people see it: a pending request past its expiry shows as expired."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return Status.choices

    def queryset(self, request, queryset):
        value = self.value()
        if value == Status.PENDING:
            return queryset.filter(open_q())
        if value == Status.EXPIRED:
            return queryset.filter(expired_q())
        if value:
            return queryset.filter(status=value)
        return queryset


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnly, admin.ModelAdmin):
    """Requests change only through the API and the decision pages, never by hand."""

    list_display = [
        "title",
        "requester_email",
        "amount",
        "currency",
        "shown_status",
        "decided_by",
        "callback",
        "created_at",
        "expires_at",
    ]
    list_filter = [EffectiveStatusFilter, "delivery_status", "created_at"]
    search_fields = ["title", "requester_email", "decisions__decided_by", "external_id"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    inlines = [AssigneeInline, DecisionInline, AuditEventInline]
    readonly_fields = [
        "id",
        "callback_url",
        "title",
        "requester_email",
        "amount",
        "currency",
        "description",
        "details",
        "external_id",
        "registered_by",
        "shown_status",
        "created_at",
        "expires_at",
        "closed_at",
        "delivery_status",
        "delivery_attempts",
        "delivery_client_errors",
        "delivery_last_status_code",
        "delivery_last_error",
        "delivery_next_attempt_at",
        "delivered_at",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "title",
                    "shown_status",
                    "requester_email",
                    "amount",
                    "currency",
                    "external_id",
                    "description",
                    "details",
                ]
            },
        ),
        ("Lifetime", {"fields": ["created_at", "expires_at", "closed_at", "registered_by"]}),
        (
            "Callback",
            {
                "fields": [
                    "callback_url",
                    "delivery_status",
                    "delivery_attempts",
                    "delivery_client_errors",
                    "delivery_last_status_code",
                    "delivery_last_error",
                    "delivery_next_attempt_at",
                    "delivered_at",
                ]
            },
        ),
    ]

    actions = ["retry_callback_now"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("decisions")

    def has_retry_callback_permission(self, request):
        return request.user.has_perm("approvals.retry_callback_approvalrequest")

    @admin.action(description="Retry callback now", permissions=["retry_callback"])
    def retry_callback_now(self, request, queryset):
        """Send failed or gone callbacks again; the others are left as they are."""
        actor = request.user.email or request.user.get_username()
        retried, skipped = [], []
        for approval in queryset:
            (retried if services.retry_callback(approval.pk, actor) else skipped).append(approval)
        if retried:
            outcomes = ApprovalRequest.objects.filter(pk__in=[a.pk for a in retried])
            delivered = sum(a.delivery_status == DeliveryStatus.DELIVERED for a in outcomes)
            self.message_user(
                request,
                f"Retried {len(retried)} callback(s): {delivered} delivered now, the others "
                "stay queued and are retried automatically.",
                messages.SUCCESS if delivered == len(retried) else messages.WARNING,
            )
        if skipped:
            self.message_user(
                request,
                "Not retried (only failed or gone callbacks can be): "
                + ", ".join(f"“{a.title}”" for a in skipped),
                messages.WARNING,
            )

    @admin.display(description="status", ordering="status")
    def shown_status(self, obj):
        return obj.get_effective_status_display()

    @admin.display(description="callback", ordering="delivery_status")
    def callback(self, obj):
        return obj.delivery_summary

    @admin.display(description="decided by")
    def decided_by(self, obj):
        decision = obj.final_decision
        return decision.decided_by if decision else "—"


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["at", "kind", "actor", "request"]
    list_filter = ["kind", "at"]
    search_fields = ["actor", "request__title", "request__external_id", "request__id"]
    date_hierarchy = "at"
    ordering = ["-at", "-pk"]
    list_select_related = ["request"]
    readonly_fields = ["request", "kind", "actor", "at", "payload"]
