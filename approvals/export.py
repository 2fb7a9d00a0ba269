"""The admin's CSV exports: which rows, safe for spreadsheets, streamed in batches.

`CsvExport` adds the "Export CSV" link's view to a changelist; `request_rows` and `event_rows` are
the rows of the requests' and the audit log's exports.
"""

import csv
import json

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone

from approvals.wire import iso_utc

# Rows read from the database at a time: the iterator's batch, and the unit of `prefetch_related`
# (one query for the decisions of each batch), so memory stays flat whatever the export's size:
# 500 keeps the worker under 100 MiB while it streams a million rows (docs/benchmarks.md).
EXPORT_BATCH_ROWS = 500
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


REQUEST_HEADER = [
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
    # Added with approver inputs: last, so scripts that read columns by position keep working.
    "inputs",
]


def request_rows(queryset):
    """One row per decision, the request's columns repeated, so that a request decided by
    several people shows each of them; a request nobody decided has one row, its decision
    columns empty. The status is the shown one (expired at once, as in the list)."""
    approvals = (
        queryset.defer("description", "details")
        .prefetch_related("decisions")
        .iterator(chunk_size=EXPORT_BATCH_ROWS)
    )
    for approval in approvals:
        request_cells, callback_cells = _request_cells(approval), _callback_cells(approval)
        for decision in approval.decisions.all() or [None]:
            inputs = "" if decision is None else _compact_json(decision.inputs)
            yield request_cells + _decision_cells(decision) + callback_cells + [inputs]


def _request_cells(approval) -> list:
    safe = spreadsheet_safe
    return [
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


def _decision_cells(decision) -> list:
    if decision is None:
        return ["", "", "", "", ""]
    safe = spreadsheet_safe
    return [
        decision.outcome,
        safe(decision.decided_by),
        safe(decision.on_behalf_of),
        iso_utc(decision.decided_at),
        safe(decision.comment),
    ]


def _callback_cells(approval) -> list:
    safe = spreadsheet_safe
    return [
        approval.delivery_status,
        approval.delivery_attempts,
        iso_utc(approval.delivered_at),
        safe(approval.delivery_last_error),
        safe(approval.registered_by),
    ]


EVENT_HEADER = ["at", "request_id", "request_title", "external_id", "kind", "actor", "payload"]


def event_rows(queryset):
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
