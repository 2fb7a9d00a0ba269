"""Generated hostile registrations, then every place that shows what was stored: whatever the API
accepts gives a request page, an admin page, the details as JSON, a CSV export and an e-mail,
never a 5xx, and each of bounded size; one-line fields stay on one line (README "Security": page
bombs, nesting, control characters).

2,000 generated bodies (the `max_examples` below): line items whose keys all differ, tables in
tables, wide objects, long text to escape, nesting from one level to thousands in any field,
control characters in every one-line field and in the callback URL, and plain random JSON.
"""

import itertools
import json
from html.parser import HTMLParser

import pytest
from django.test import Client
from hypothesis import event, given, settings
from hypothesis import strategies as st

from approvals.details import SHOWN_DEPTH
from approvals.models import ApprovalRequest
from approvals.notify import notices, outbox
from approvals.tests.conftest import API_TOKEN
from approvals.tests.test_api_properties import NOT_IN_A_LINE_RE, generated
from approvals.tests.test_details_display import MAX_PAGE_BYTES

pytestmark = pytest.mark.django_db

# One request's rows of the CSV export: its one-line fields and a comment, never its details.
MAX_EXPORT_BYTES = 16 * 1024
executions = itertools.count()  # a new Workflows execution, hence callback URL, per example


# --- Generated bodies ---------------------------------------------------------------------------


def nested(levels: int, opening: str) -> str:
    """JSON text nested `levels` deep, of objects ("{"), lists ("[") or both ("{[")."""
    pieces = [
        {"{": ('{"a": ', "}"), "[": ("[", "]")}[opening[n % len(opening)]] for n in range(levels)
    ]
    return "".join(start for start, _ in pieces) + "1" + "".join(end for _, end in reversed(pieces))


def as_json(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def counts(largest: int):
    """Half the time a few, half the time up to `largest`: the big shapes, without every example
    paying for them."""
    return st.integers(0, 20) | st.integers(0, largest)


small_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
details_texts = st.one_of(
    # Line items whose keys all differ: a table as wide as it is long.
    counts(3_000).map(lambda n: as_json({"lines": [{f"k{i}": i} for i in range(n)]})),
    # Line items with a money column, to total.
    counts(3_000).map(
        lambda n: as_json({"lines": [{"item": f"n{i}", "amount": f"{i}.50"} for i in range(n)]})
    ),
    # Tables in tables: rows holding tables of distinct keys.
    st.tuples(counts(400), st.integers(1, 14)).map(
        lambda nm: as_json(
            {"lines": [{"part": [{f"k{j}": j} for j in range(nm[1])]} for _ in range(nm[0])]}
        )
    ),
    # A wide object.
    counts(6_000).map(lambda n: as_json({f"field{i}": i for i in range(n)})),
    # Long text, escaped or multi-byte or a link.
    st.tuples(
        counts(70_000), st.sampled_from(["x", '"', "<&>", "€", "𝄞", "https://e.example/"])
    ).map(lambda nc: as_json({"note": nc[1] * (nc[0] // len(nc[1]))})),
    # Nesting, from one level to far past the parser's limit.
    st.tuples(st.integers(1, 12) | st.integers(1, 1_500), st.sampled_from(["{", "[", "{["])).map(
        lambda lo: '{"deep": ' + nested(*lo) + "}"
    ),
    # Any plain JSON object, its text short (long text is a shape above).
    st.dictionaries(st.text(max_size=8), small_values, max_size=5).map(as_json),
    st.just("null"),
)
# Controls, C1 controls, separators, bidi overrides and isolates, NUL; a space, which is fine.
bad_characters = st.sampled_from(
    [*"\t\n\r\x0b\x0c\x1b\x7f\x85\x9b\u2028\u2029\u202e\u2066\x00 ", "\r\n"]
)
ONE_LINE_FIELDS = ["title", "requester_email", "currency", "external_id", "assignees"]


@st.composite
def hostile_bodies(draw, callback_url):
    """A registration body as JSON text, near-valid, with one or more hostile parts."""
    fields = {
        "callback_url": callback_url,
        "title": draw(st.sampled_from(["Team offsite", " Laptop "]) | st.text(max_size=40)),
        "requester_email": "alice@example.com",
        "amount": "120.50",
        "currency": "EUR",
        "external_id": "EXP-142",
        "description": draw(st.sampled_from(["", "Two nights.\r\n\tHotel"]) | st.text(max_size=40)),
    }
    if draw(st.booleans()):
        fields["assignees"] = ["manager@example.com"]
    if draw(st.integers(0, 3)) == 0:  # a bad character in a one-line field or the URL
        name = draw(st.sampled_from([*ONE_LINE_FIELDS, "callback_url"]))
        value = fields.get(name) or ["manager@example.com"]
        text = value[0] if isinstance(value, list) else value
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(bad_characters) + text[at:]
        fields[name] = [text] if isinstance(value, list) else text
    body = as_json(fields)[:-1] + ', "details": ' + draw(details_texts)
    if draw(st.integers(0, 7)) == 0:  # deep nesting in another field, known or not
        name = draw(st.sampled_from(["assignees", "assignee_groups", "escalate_to", "inputs"]))
        body += f', "{name}": ' + nested(draw(st.integers(1, 1_200)), draw(st.sampled_from("{[")))
    return body + "}"


# --- Checking what the pages show ----------------------------------------------------------------


class NestingDepth(HTMLParser):
    """How deeply tables and lists nest in a page (the details' tables and lists)."""

    def __init__(self):
        super().__init__()
        self.depth = self.deepest = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("table", "ul"):
            self.depth += 1
            self.deepest = max(self.deepest, self.depth)

    def handle_endtag(self, tag):
        if tag in ("table", "ul"):
            self.depth -= 1


def deepest_nesting(html: str) -> int:
    parser = NestingDepth()
    parser.feed(html)
    return parser.deepest


@pytest.fixture
def auditor_client(auditor):
    """An auditor's signed-in client: auditors may open every request and the admin."""
    client = Client()
    client.force_login(auditor)
    return client


def assert_shown_bounded(client, request_id):
    """Every page showing the request answers, within its bound; tables nest no deeper than
    the levels shown."""
    page = client.get(f"/approvals/{request_id}/")
    assert page.status_code == 200 and len(page.content) <= MAX_PAGE_BYTES, len(page.content)
    assert deepest_nesting(page.content.decode()) <= SHOWN_DEPTH
    admin = client.get(f"/admin/approvals/approvalrequest/{request_id}/change/")
    assert admin.status_code == 200 and len(admin.content) <= MAX_PAGE_BYTES, len(admin.content)
    whole = client.get(f"/approvals/{request_id}/details.json")
    assert whole.status_code == 200 and whole["Content-Type"] == "application/json"
    assert json.loads(whole.content) == ApprovalRequest.objects.get(pk=request_id).details
    export = client.get(f"/admin/approvals/approvalrequest/export/?id__exact={request_id}")
    assert export.status_code == 200
    rows = b"".join(export.streaming_content)
    assert str(request_id).encode() in rows and len(rows) <= MAX_EXPORT_BYTES, len(rows)


def assert_one_line_fields_stay_on_one_line(request_id, mailoutbox):
    """What was stored of the one-line fields holds none of the characters they refuse, and
    the e-mail's plain text holds the title whole, on a line of its own."""
    stored = ApprovalRequest.objects.values(
        "title", "requester_email", "currency", "external_id", "callback_url"
    ).get(pk=request_id)
    for name, value in stored.items():
        assert not NOT_IN_A_LINE_RE.search(value), (name, value)
    assert not any(character.isspace() for character in stored["callback_url"])
    mailoutbox.clear()
    approval = ApprovalRequest.objects.get(pk=request_id)
    outbox.send([n.pk for n in notices.tell_deciders(approval, notices.Purpose.NEW)])
    [message] = mailoutbox  # to the manager, who may decide every request generated
    assert "    " + stored["title"] in message.body.splitlines()
    assert "\n" not in message.subject and "\r" not in message.subject


@settings(generated, max_examples=2_000)
@given(data=st.data())
def test_whatever_is_registered_shows_on_bounded_pages_and_nothing_answers_5xx(
    client, receiver, manager, auditor_client, mailoutbox, data
):
    # A fresh execution each time, its name of one length, so that the draws replay alike.
    callback_url = receiver.callback_url(f"page-{next(executions):08d}")
    body = data.draw(hostile_bodies(callback_url))

    response = client.post(
        "/api/approvals",
        body.encode("utf-8", "surrogatepass"),
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )

    assert response.status_code in (200, 201, 400, 413), response.content[:300]
    event(f"answered {response.status_code}")
    if response.status_code in (400, 413):
        assert response.json()["error"]
        return
    request_id = response.json()["id"]
    assert_shown_bounded(auditor_client, request_id)
    assert_one_line_fields_stay_on_one_line(request_id, mailoutbox)
