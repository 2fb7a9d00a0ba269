"""The auditor's view: requests, their decisions and the audit log, read in the Django admin.

Decisions and audit events are read-only here: the admin never writes to the record. What a
changelist shows (its filters, search and dates) can be taken away as CSV, for the auditor's own
spreadsheet or tools (`approvals/export.py`).
"""

from dataclasses import dataclass

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from approvals import audit, details, export, permissions, services
from approvals.models import (
    ApprovalRequest,
    Assignee,
    AuditEvent,
    Decision,
    Delegation,
    DeliveryStatus,
    Notice,
    PersonalToken,
    Status,
    expired_q,
    open_q,
)
from approvals.paging import EstimatedCountPaginator
from approvals.templatetags.approvals_display import details_table


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
    fields = ["role", "email", "group", "handed_by", "handed_note"]
    readonly_fields = fields


class DecisionInline(ReadOnlyInline):
    model = Decision
    fields = ["outcome", "decided_by", "on_behalf_of", "comment", "inputs", "decided_at"]
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
class ApprovalRequestAdmin(ReadOnly, export.CsvExport, admin.ModelAdmin):
    """Requests change only through the API and the decision pages, never by hand."""

    # No count of the whole table per page, at a million rows (approvals/paging.py).
    show_full_result_count = False
    paginator = EstimatedCountPaginator

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
    # No date_hierarchy: its drill-down lists the distinct days of the month, which reads every
    # row of it (a million in a busy month); the "created_at" filter offers the dates instead.
    ordering = ["-created_at"]
    inlines = [AssigneeInline, DecisionInline, AuditEventInline]
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
                    "shown_details",
                ]
            },
        ),
        ("Lifetime", {"fields": ["created_at", "expires_at", "closed_at", "registered_by"]}),
        (
            "Policy",
            {
                "fields": [
                    "required_approvals",
                    "inputs",
                    "escalates_at",
                    "escalated_at",
                    "next_reminder_at",
                    "notify_requester",
                    "requester_notice_due_at",
                ]
            },
        ),
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
    readonly_fields = [name for _, section in fieldsets for name in section["fields"]]

    actions = ["retry_callback_now"]

    def get_queryset(self, request):
        # The details are read apart (`shown_details`), as the request page reads them.
        return super().get_queryset(request).defer("details").prefetch_related("decisions")

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
    def shown_status(self, approval):
        return approval.get_effective_status_display()

    @admin.display(description="details")
    def shown_details(self, approval):
        """The details as the request page shows them (within its caps), and the whole as JSON;
        Django's own display of a JSONField would serialize any depth, and fail on it."""
        return format_html(
            '{}<p><a href="{}">The details as JSON</a></p>',
            details_table(details.readable(approval.pk)),
            reverse("approvals:details-json", args=[approval.pk]),
        )

    @admin.display(description="callback", ordering="delivery_status")
    def callback(self, approval):
        """The state in words, and for operators the last attempt's error as it was stored."""
        if approval.delivery_failed and approval.delivery_last_error:
            return f"{approval.delivery_summary} ({approval.delivery_last_error[:120]})"
        return approval.delivery_summary

    @admin.display(description="decided by")
    def decided_by(self, approval):
        decision = approval.final_decision
        return decision.decided_by if decision else "—"

    export_name = "approval-requests"
    export_header = export.REQUEST_HEADER
    export_rows = staticmethod(export.request_rows)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnly, export.CsvExport, admin.ModelAdmin):
    # No count of the whole table per page, at a million rows (approvals/paging.py).
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_display = ["at", "kind", "actor", "request"]
    list_filter = ["kind", "at"]
    search_fields = ["actor", "request__title", "request__external_id", "request__id"]
    # No date_hierarchy, as for the requests: the "at" filter offers the dates.
    ordering = ["-at", "-pk"]
    list_select_related = ["request"]
    readonly_fields = [
        "request",
        "kind",
        "actor",
        "at",
        "payload",
        "previous_hash",
        "hash",
        "chain",
    ]

    export_name = "audit-events"
    export_header = export.EVENT_HEADER
    export_rows = staticmethod(export.event_rows)

    def changelist_view(self, request, extra_context=None):
        """The list, and whether the hash chains of the requests on this page hold."""
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is not None and changelist.result_list:
            shown = {event.request_id for event in changelist.result_list}
            response.context_data["chain"] = chain_status(
                shown, "of the {} request(s) on this page"
            )
        return response

    @admin.display(description="Chain")
    def chain(self, event):
        return chain_status({event.request_id}, "of its request").message


@dataclass(frozen=True)
class ChainStatus:
    broken: bool
    message: str


def chain_status(request_ids: set, whose: str) -> ChainStatus:
    """Check every event of these requests (`approvals.audit`); the nightly `verify_audit`
    checks the whole log. `whose` says whose events they are; "{}" stands for how many requests."""
    events = AuditEvent.objects.filter(request_id__in=request_ids).order_by("request_id", "pk")
    checked = audit.check(events.iterator(chunk_size=export.EXPORT_BATCH_ROWS))
    if checked.broken:
        return ChainStatus(True, f"Chain broken at {checked.broken}.")
    return ChainStatus(
        False,
        f"Chain verified: all {checked.events} event(s) {whose.format(checked.requests)}.",
    )


@admin.register(Delegation)
class DelegationAdmin(ReadOnly, admin.ModelAdmin):
    """Who could act for whom, and when: delegations go through `services.delegate`, never here."""

    list_display = ["delegator", "delegate", "starts_at", "ends_at", "note", "ended_early_at"]
    list_filter = ["starts_at", "ends_at", "ended_early_at"]
    search_fields = ["delegator__email", "delegate__email", "note"]
    date_hierarchy = "starts_at"
    list_select_related = ["delegator", "delegate"]
    readonly_fields = [
        "delegator",
        "delegate",
        "starts_at",
        "ends_at",
        "note",
        "created_at",
        "ended_early_at",
    ]


@admin.register(PersonalToken)
class PersonalTokenAdmin(ReadOnly, admin.ModelAdmin):
    """Who holds which API token, and its use. Owners issue and revoke them (or
    `manage.py issue_personal_token` does), never the admin; the digest is not shown."""

    list_display = [
        "prefix",
        "name",
        "user",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["created_at", "expires_at", "revoked_at"]
    search_fields = ["prefix", "name", "user__username", "user__email"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    fields = ["prefix", "name", "user", "created_at", "last_used_at", "expires_at", "revoked_at"]
    readonly_fields = fields


@admin.register(Notice)
class NoticeAdmin(ReadOnly, admin.ModelAdmin):
    """The notification outbox: each notice to each person on each channel, whether it went,
    how often it was tried and why it failed. The outbox (`notify.outbox`) writes it, never the
    admin."""

    # No count of the whole table per page, at a million rows (approvals/paging.py).
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    list_display = [
        "created_at",
        "purpose",
        "channel",
        "email",
        "state",
        "attempts",
        "sent_at",
        "last_error",
    ]
    list_filter = ["state", "channel", "purpose", "created_at"]
    search_fields = ["email", "email_key", "request__id", "request__title"]
    date_hierarchy = "created_at"
    list_select_related = ["request"]
    fields = [
        "request",
        "delegation",
        "purpose",
        "channel",
        "email",
        "on_behalf_of",
        "state",
        "created_at",
        "due_at",
        "attempts",
        "sent_at",
        "last_error",
        "payload",
        "ref",
    ]
    readonly_fields = fields
    raw_id_fields = ["request", "delegation"]
