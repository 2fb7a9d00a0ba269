"""Generated bodies against the registration API: whatever arrives, the answer is never a 5xx."""

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals.registration import FIELDS

from .conftest import API_TOKEN

pytestmark = pytest.mark.django_db


def json_values(floats):
    scalars = st.none() | st.booleans() | st.integers() | floats | st.text()
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    )


# NaN and Infinity reach the API as the non-standard tokens json.dumps writes for them.
any_values = json_values(st.floats())
plain_values = json_values(st.floats(allow_nan=False, allow_infinity=False))
field_names = st.sampled_from(sorted(FIELDS)) | st.text(max_size=10)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.dictionaries(field_names, any_values, max_size=8) | any_values)
def test_no_generated_body_gets_a_server_error(client, body):
    response = client.post(
        "/api/approvals",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert response.status_code in (200, 201, 400), response.content
    if response.status_code == 400:
        assert response.json()["error"]


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    title=st.text(min_size=1, max_size=200).filter(lambda t: t.strip() and "\x00" not in t),
    amount=st.decimals(min_value=0, max_value=10**12, places=2, allow_nan=False),
    details=st.dictionaries(st.text(max_size=10), plain_values, max_size=5),
)
def test_valid_bodies_with_any_text_are_stored_as_sent(client, receiver, title, amount, details):
    from approvals.models import ApprovalRequest

    details = json.loads(json.dumps(details))  # what arrives over the wire
    # PostgreSQL cannot store NUL characters or lone surrogates: those are refused with a 400.
    storable = all(
        ch != "\x00" and not "\ud800" <= ch <= "\udfff"
        for string in [title, *strings_in(details)]
        for ch in string
    )
    body = {
        "callback_url": receiver.callback_url(f"exec-{ApprovalRequest.objects.count()}"),
        "title": title,
        "requester_email": "alice@example.com",
        "amount": str(amount),
        "currency": "EUR",
        "details": details,
    }
    response = client.post(
        "/api/approvals",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    if not storable:
        assert response.status_code == 400
        return
    assert response.status_code == 201, response.content
    stored = ApprovalRequest.objects.get(pk=response.json()["id"])
    assert stored.title == title.strip()
    assert stored.amount == amount
    # PostgreSQL's jsonb keeps a number's decimal value, not its float spelling (1e16 -> 10^16).
    assert as_decimals(stored.details) == as_decimals(details)


def as_decimals(value):
    return json.loads(json.dumps(value), parse_float=Decimal, parse_int=Decimal)
