"""A request's details read back for people: how much of them a page shows, and the whole.

A caller may send 64 KiB of details, and shown without caps they cost a page far more: a list of
objects whose keys all differ is a table as wide as it is long (2,000 such line items, 27 KB of
JSON, once made an 84 MB page that took 19 s), and tables nest inside tables. The caps below hold
any details to a page of a few hundred kilobytes; the page says what it leaves out, and the whole
details are one link away as JSON (`views.details_json`). Pages and the admin render them with
`approvals_display.details_table`.
"""

import json

from django.db.models import TextField
from django.db.models.functions import Cast

from approvals import nesting
from approvals.models import ApprovalRequest
from approvals.registration import MAX_DEPTH

SHOWN_DEPTH = MAX_DEPTH  # levels of objects and lists: all that the API accepts
SHOWN_ROWS = 100  # fields of an object, items of a list, rows of a table of line items
SHOWN_COLUMNS = 12  # columns of a table of line items
SHOWN_CELLS = 2_000  # values in all the tables of one request's details together
SHOWN_TEXT = 300  # characters of one key or value


def as_text(request_id) -> str:
    """The request's details as the database holds them, JSON text never parsed here, so that
    no depth stored can exhaust the stack; "{}" when there is no such request."""
    text = (
        ApprovalRequest.objects.filter(pk=request_id)
        .values_list(Cast("details", output_field=TextField()), flat=True)
        .first()
    )
    return text or "{}"


def readable(request_id) -> dict:
    """The request's details parsed, each object or list deeper than pages show replaced by a
    placeholder first: details stored before the API limited their depth parse all the same."""
    details = json.loads(nesting.cut(as_text(request_id), SHOWN_DEPTH + 1, "…"))
    return details if isinstance(details, dict) else {}
