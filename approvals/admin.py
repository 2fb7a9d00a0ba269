"""The auditor's view: requests, their decisions and the audit log, read in the Django admin.

Decisions and audit events are read-only here: the admin never writes to the record. What a
changelist shows (its filters, search and dates) can be taken away as CSV, for the auditor's own
spreadsheet or tools (`CsvExport`).
"""

import csv
import json
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from . import audit, details, permissions, services
from .models import (
    ApprovalRequest,
    Assignee,
    AuditEvent,
    Decision,
    Delegation,
    DeliveryStatus,
    Status,
    expired_q,
    open_q,
)
from .templatetags.approvals_display import details_table
from .wire import iso_utc


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
    fields = ["role", "email", "group"]
    readonly_fields = fields


class DecisionInline(ReadOnlyInline):
    model = Decision
    fields = ["outcome", "decided_by", "on_behalf_of", "comment", "decided_at"]
    readonly_fields = fields


class AuditEventInline(ReadOnlyInline):
    model = AuditEvent
    fields = ["at", "kind", "actor", "payload"]
    readonly_fields = fields


# --- CSV export -------------------------------------------------------------------------------

# Rows read from the database at a time: the iterator's batch, and the unit of `prefetch_related`
# (one query for the decisions of each batch), so memory stays flat whatever the export's size.
EXPORT_BATCH_ROWS = 2000
# Text handed to the server at a time: one CSV line per write would cost a write per row.
EXPORT_PIECE_CHARS = 64 * 1024
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """`text` such that a spreadsheet shows it instead of running it.

    Spreadsheets read a cell starting with =, +, -, @, a tab or a carriage return as a formula,
    and a title or comment such as "=HYPERLINK(...)" would then act when the auditor opens the
    file. As OWASP advises ("CSV Injection"), such cells start with an apostrophe, which the
    spreadsheet reads as "this is text" and does not show. Only text that callers and people wrote
    goes through here; numbers, dates and states we produce never start with those characters
    (amounts cannot be negative: a database constraint).
    """
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class Echo:
    """A pseudo-buffer for `csv.writer`: `write` hands the line back instead of keeping it
    (Django's "Streaming large CSV files"), so nothing accumulates."""

    def write(self, value):
        return value


def csv_pieces(header, rows):
    """The CSV text of `header` and `rows`, in pieces of about `EXPORT_PIECE_CHARS`.

    Plain UTF-8 with a header row and no byte-order mark: the files are read by scripts and audit
    tools first (Python's csv, pandas, BigQuery), for which a BOM is part of the first column's
    name; spreadsheets open UTF-8 CSV through their import dialog.
    """
    writer = csv.writer(Echo())
    pending = [writer.writerow(header)]
    size = len(pending[0])
    for row in rows:
        line = writer.writerow(row)
        pending.append(line)
        size += len(line)
        if size >= EXPORT_PIECE_CHARS:
            yield "".join(pending)
            pending, size = [], 0
    if pending:
        yield "".join(pending)


class CsvExport:
    """An "Export CSV" link on the changelist (its template carries the changelist's query
    string): the rows the changelist selects now, with its filters, search and date, streamed as
    they are read so that a hundred thousand rows never sit in memory at once.

    Subclasses name the file (`export_name`), its columns (`export_header`) and turn the
    changelist's queryset into rows (`export_rows`).
    """

    export_name = ""
    export_header: list[str] = []

    def export_rows(self, queryset):
        raise NotImplementedError

    def get_urls(self):
        opts = self.model._meta
        export = path(
            "export/",
            self.admin_site.admin_view(self.export_view),
            name=f"{opts.app_label}_{opts.model_name}_export",
        )
        # Ahead of the admin's own URLs, whose "<path:object_id>/" would take "export" for a key.
        return [export, *super().get_urls()]

    def export_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            # The changelist's own reading of the query string: the export selects exactly the
            # rows the auditor was looking at (all pages of them).
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            # As the changelist does with a filter it cannot apply: back to the list, never an
            # export of everything instead.
            opts = self.model._meta
            changelist_url = reverse(
                f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"
            )
            return HttpResponseRedirect(f"{changelist_url}?{ERROR_FLAG}=1")
        queryset = changelist.get_queryset(request)
        response = StreamingHttpResponse(
            csv_pieces(self.export_header, self.export_rows(queryset)),
            content_type="text/csv; charset=utf-8",
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="{self.export_name}-{stamp}.csv"'
        return response


def _amount(value) -> str:
    # Fixed-point always: str() of a Decimal may answer "1E+3".
    return "" if value is None else f"{value:f}"


def _compact_json(value) -> str:
    # Sorted keys: equal payloads read, and diff, the same. Non-ASCII kept: the file is UTF-8.
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


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
class ApprovalRequestAdmin(ReadOnly, CsvExport, admin.ModelAdmin):
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
        "shown_details",
        "external_id",
        "registered_by",
        "shown_status",
        "required_approvals",
        "created_at",
        "expires_at",
        "closed_at",
        "escalates_at",
        "escalated_at",
        "next_reminder_at",
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
                    "escalates_at",
                    "escalated_at",
                    "next_reminder_at",
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
    def shown_status(self, obj):
        return obj.get_effective_status_display()

    @admin.display(description="details")
    def shown_details(self, obj):
        """The details as the request page shows them (within its caps), and the whole as JSON;
        Django's own display of a JSONField would serialize any depth, and fail on it."""
        return format_html(
            '{}<p><a href="{}">The details as JSON</a></p>',
            details_table(details.readable(obj.pk)),
            reverse("approvals:details-json", args=[obj.pk]),
        )

    @admin.display(description="callback", ordering="delivery_status")
    def callback(self, obj):
        """The state in words, and for operators the last attempt's error as it was stored."""
        if obj.delivery_failed and obj.delivery_last_error:
            return f"{obj.delivery_summary} ({obj.delivery_last_error[:120]})"
        return obj.delivery_summary

    @admin.display(description="decided by")
    def decided_by(self, obj):
        decision = obj.final_decision
        return decision.decided_by if decision else "—"

    export_name = "approval-requests"
    export_header = [
        "request_id",
        "external_id",
        "title",
        "requester_email",
        "amount",
        "currency",
        "status",
        "created_at",
        "expires_at",
        "closed_at",
        "required_approvals",
        "decision",
        "decided_by",
        "on_behalf_of",
        "decided_at",
        "comment",
        "callback_status",
        "callback_attempts",
        "callback_delivered_at",
        "callback_last_error",
        "registered_by",
    ]

    def export_rows(self, queryset):
        """One row per decision, the request's columns repeated, so that a request decided by
        several people shows each of them; a request nobody decided has one row, its decision
        columns empty. The status is the shown one (expired at once, as in the list)."""
        requests = (
            queryset.defer("description", "details")
            .prefetch_related("decisions")
            .iterator(chunk_size=EXPORT_BATCH_ROWS)
        )
        safe = spreadsheet_safe
        for approval in requests:
            request_cells = [
                str(approval.pk),
                safe(approval.external_id),
                safe(approval.title),
                safe(approval.requester_email),
                _amount(approval.amount),
                safe(approval.currency),
                approval.effective_status,
                iso_utc(approval.created_at),
                iso_utc(approval.expires_at),
                iso_utc(approval.closed_at),
                approval.required_approvals,
            ]
            callback_cells = [
                approval.delivery_status,
                approval.delivery_attempts,
                iso_utc(approval.delivered_at),
                safe(approval.delivery_last_error),
                safe(approval.registered_by),
            ]
            for decision in approval.decisions.all() or [None]:
                decision_cells = (
                    [
                        decision.outcome,
                        safe(decision.decided_by),
                        safe(decision.on_behalf_of),
                        iso_utc(decision.decided_at),
                        safe(decision.comment),
                    ]
                    if decision
                    else ["", "", "", "", ""]
                )
                yield request_cells + decision_cells + callback_cells


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnly, CsvExport, admin.ModelAdmin):
    list_display = ["at", "kind", "actor", "request"]
    list_filter = ["kind", "at"]
    search_fields = ["actor", "request__title", "request__external_id", "request__id"]
    date_hierarchy = "at"
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
    export_header = ["at", "request_id", "request_title", "external_id", "kind", "actor", "payload"]

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

    def export_rows(self, queryset):
        """One row per event, with the request's title and external id to read it by, and the
        payload as compact JSON."""
        events = (
            queryset.select_related("request")
            .defer("request__description", "request__details")
            .iterator(chunk_size=EXPORT_BATCH_ROWS)
        )
        safe = spreadsheet_safe
        for event in events:
            yield [
                iso_utc(event.at),
                str(event.request_id),
                safe(event.request.title),
                safe(event.request.external_id),
                event.kind,
                safe(event.actor),
                safe(_compact_json(event.payload)),
            ]


@dataclass(frozen=True)
class ChainStatus:
    broken: bool
    message: str


def chain_status(request_ids: set, whose: str) -> ChainStatus:
    """Check every event of these requests (`approvals.audit`); the nightly `verify_audit`
    checks the whole log. `whose` says whose events they are; "{}" stands for how many requests."""
    events = AuditEvent.objects.filter(request_id__in=request_ids).order_by("request_id", "pk")
    checked = audit.check(events.iterator(chunk_size=EXPORT_BATCH_ROWS))
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
