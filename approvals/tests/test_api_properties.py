"""Generated requests against the API: whatever arrives, never a 5xx, every 4xx a JSON error, and
every answer one the OpenAPI document describes for its status (`test_openapi.check_answer`).

About 1,100 generated requests in all (the `max_examples` below), across the three endpoints and
the document's own: malformed and near-valid bodies, wrong content types, random methods, ids,
paths, tokens and headers.
"""

import base64
import json
import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals import services
from approvals.models import ApprovalRequest
from approvals.registration import FIELDS, MAX_DEPTH
from approvals.tests.conftest import API_TOKEN
from approvals.tests.test_openapi import check_answer, request_body_pointer, schema_errors

pytestmark = pytest.mark.django_db

# The fixtures (a database transaction, the stand-in servers) are shared by all examples of a test.
generated = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def assert_documented(response, method=None, path=None):
    """Never a 5xx; a 4xx carries a JSON error; the answer is one the document describes."""
    assert response.status_code < 500, (response.status_code, response.content[:500])
    body = check_answer(response, method, path)
    if 400 <= response.status_code < 500 and body is not None:
        assert isinstance(body["error"], str) and body["error"].strip(), body
    return body


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


@settings(generated, max_examples=200)
@given(body=st.dictionaries(field_names, any_values, max_size=8) | any_values)
def test_no_generated_body_gets_a_server_error(client, body):
    response = client.post(
        "/api/approvals",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert response.status_code in (200, 201, 400), response.content
    assert_documented(response)


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


# What a one-line field may not hold (README, "Security"), written out again here on purpose.
NOT_IN_A_LINE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def depth(value) -> int:
    """Levels of objects and lists in a JSON value (a scalar is 0)."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@settings(generated, max_examples=60)
@given(
    title=st.text(min_size=1, max_size=200).filter(lambda t: t.strip() and "\x00" not in t),
    amount=st.decimals(min_value=0, max_value=10**12, places=2, allow_nan=False),
    details=st.dictionaries(st.text(max_size=10), plain_values, max_size=5),
)
def test_valid_bodies_with_any_text_are_stored_as_sent(client, receiver, title, amount, details):
    details = json.loads(json.dumps(details))  # what arrives over the wire
    # PostgreSQL cannot store NUL characters or lone surrogates: those are refused with a 400.
    # Nor can a title hold control characters, nor details nest deeper than the limit.
    storable = (
        all(
            ch != "\x00" and not "\ud800" <= ch <= "\udfff"
            for string in [title, *strings_in(details)]
            for ch in string
        )
        and not NOT_IN_A_LINE_RE.search(title)
        and depth(details) <= MAX_DEPTH
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
    assert_documented(response)
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


# --- Near-valid registrations: the request schema never promises more than the server keeps ------

ELSEWHERE = (
    "https://elsewhere.example/v1/projects/p/locations/l/workflows/w/executions/e/callbacks/c"
)
# Text that JSON Schema can describe: no lone surrogates (PostgreSQL's limits are the server's).
clean_text = st.text(st.characters(codec="utf-8"), max_size=12)
valid_emails = st.sampled_from(["alice@example.com", "Bob.Smith@Example.COM", "x@sub.example.org"])
# Without "@": jsonschema checks `format: email` only that far (formats are loosely checked).
invalid_emails = st.sampled_from(["", "nobody", "example.com", "alice at example.com"])
amounts = (
    st.decimals(min_value=0, max_value=10**15 - 1, places=3, allow_nan=False).map(str)
    | st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False).map(float)
    | st.integers(min_value=-5, max_value=10**16)
    | st.sampled_from(["-1", "1.0001", "twelve", "", "1e400", "NaN", True, [], {}])
)


def repeated(shortest, longest):
    """One character, repeated: long strings near a limit, cheap to generate."""
    return st.builds(
        lambda char, n: char * n,
        st.characters(codec="utf-8"),
        st.integers(min_value=shortest, max_value=longest),
    )


field_values = {
    "callback_url": st.sampled_from(
        ["{valid}", "{valid}?x=1", "{valid}#f", "{valid}/more", ELSEWHERE]
    )
    | st.integers()
    | st.none(),
    "title": clean_text | repeated(195, 205) | st.sampled_from(["  ", "a\x00"]),
    "requester_email": valid_emails | invalid_emails | st.integers() | st.none(),
    "amount": amounts | st.none(),
    "currency": st.sampled_from(["EUR", "usd", "EURO", "E1", "E1R", "", 978]) | st.none(),
    "description": clean_text | repeated(9_998, 10_002) | st.none(),
    "details": st.dictionaries(clean_text, plain_values, max_size=3) | plain_values,
    "assignees": st.lists(valid_emails | invalid_emails, max_size=3)
    | st.sampled_from(["alice@example.com", [f"a{n}@example.com" for n in range(101)]])
    | st.none(),
    "external_id": clean_text | repeated(199, 201) | st.integers() | st.none(),
    "timeout_seconds": st.integers(min_value=0, max_value=40_000_000)
    | st.sampled_from([59, 60, 31_536_000, 31_536_001, 3600.0, 60.5, "3600", True])
    | st.none(),
    "unknown_field": st.integers(),
}


@st.composite
def near_valid_bodies(draw):
    body = {
        "callback_url": "{valid}",
        "title": "Team offsite",
        "requester_email": "alice@example.com",
        "amount": "120.50",
        "currency": "EUR",
    }
    for name in draw(st.sets(st.sampled_from(sorted(field_values)), max_size=4)):
        body[name] = draw(field_values[name])
    if draw(st.booleans()):
        body.pop(draw(st.sampled_from(sorted(body))))
    return body


def unstorable(value) -> bool:
    """Whether a JSON value holds a NUL character or a lone surrogate, which the server refuses
    anywhere (PostgreSQL cannot store them), or nests deeper than the server allows: rules JSON
    Schema cannot state for nested values."""
    return any(
        ch == "\x00" or "\ud800" <= ch <= "\udfff" for string in strings_in(value) for ch in string
    ) or any(depth(item) > MAX_DEPTH for item in value.values())


@settings(generated, max_examples=200)
@given(body=near_valid_bodies(), execution=st.integers(min_value=0, max_value=10**9))
def test_near_valid_registrations_get_documented_answers(client, receiver, body, execution):
    if isinstance(body.get("callback_url"), str):
        valid = receiver.callback_url(f"exec-{execution}")
        body["callback_url"] = body["callback_url"].replace("{valid}", valid)
    response = client.post(
        "/api/approvals",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    answer = assert_documented(response)
    # A body the documented schema accepts is registered, if its callback URL starts with an
    # allowed prefix (configuration, which the document can only name).
    allowed = str(body.get("callback_url")).startswith(receiver.base_url + "/v1/")
    if allowed and not schema_errors(request_body_pointer(), body) and not unstorable(body):
        assert response.status_code in (200, 201), (body, answer)


# --- Any request at all --------------------------------------------------------------------


def weighted(*choices):
    """One of the strategies, picked with the given weights: (weight, strategy), ..."""
    indexes = [index for index, (weight, _strategy) in enumerate(choices) for _ in range(weight)]
    return st.sampled_from(indexes).flatmap(lambda index: choices[index][1])


# The method the path documents ("documented") or any other.
methods = weighted(
    (3, st.just("documented")),
    (1, st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"])),
)
latin1_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)
content_types = weighted(
    (4, st.just("application/json")),
    (
        2,
        st.sampled_from(
            [
                "application/json; charset=utf-8",
                "application/json; charset=latin-1",
                "application/json;charset=nonsense",
                "APPLICATION/JSON",
                "application/problem+json",
                "text/plain",
                "text/json",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=xyz",
                "multipart/form-data",
                "",
            ]
        ),
    ),
    (1, latin1_text),
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


jwt_like = st.builds(
    lambda header, payload, signature: ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)]
    ),
    st.fixed_dictionaries({"alg": st.sampled_from(["RS256", "none", "HS256", "ES256"])})
    | st.fixed_dictionaries({"alg": st.just("RS256"), "kid": st.text(max_size=8)})
    | plain_values,
    plain_values,
    st.binary(max_size=64),
)

# ("none" | a kind of token from the `tokens` fixture, "") or ("raw" | "bearer", text).
authorizations = weighted(
    (6, st.sampled_from(["api-token", "id-token"]).map(lambda kind: (kind, ""))),
    (
        2,
        st.sampled_from(["none", "intruder", "expired", "wrong-audience", "bare-bearer"]).map(
            lambda kind: (kind, "")
        ),
    ),
    (1, latin1_text.map(lambda text: ("raw", text))),
    (1, latin1_text.map(lambda text: ("bearer", text))),
    (1, jwt_like.map(lambda token: ("bearer", token))),
)

# ("known", index into `known_ids`) or ("raw", what goes into the URL).
ids = weighted(
    (4, st.integers(min_value=0, max_value=4).map(lambda n: ("known", n))),
    (2, st.uuids().map(lambda u: ("raw", str(u)))),
    (1, st.uuids().map(lambda u: ("raw", str(u).upper()))),
    (1, st.text(max_size=20).map(lambda text: ("raw", text))),
)

paths = weighted(
    (4, st.just(("collection", None))),
    (3, ids.map(lambda i: ("item", i))),
    (3, ids.map(lambda i: ("cancel", i))),
    (1, st.just(("openapi", None))),
    (1, st.text(max_size=20).map(lambda text: ("other", text))),
)

# (kind, content): "valid" is a fresh valid registration, "json" a value to serialize.
bodies = weighted(
    (4, st.just(("valid", None))),
    (3, st.dictionaries(field_names, any_values, max_size=6).map(lambda d: ("json", d))),
    (1, any_values.map(lambda value: ("json", value))),
    (1, st.just(("raw", b""))),
    (1, st.binary(max_size=200).map(lambda data: ("raw", data))),
    (1, st.text(max_size=100).map(lambda text: ("raw", text.encode("utf-8", "surrogatepass")))),
    (1, st.integers(min_value=1, max_value=100_000).map(lambda n: ("raw", b"[" * n + b"]" * n))),
    (1, st.just(("raw", b'{"title": "' + b"x" * (257 * 1024) + b'"}'))),
)

extra_headers = st.dictionaries(
    st.sampled_from(
        [
            "Accept",
            "Accept-Encoding",
            "Cookie",
            "Origin",
            "Referer",
            "User-Agent",
            "X-Forwarded-For",
            "X-Forwarded-Proto",
            "X-Goog-IAP-JWT-Assertion",
            "X-Goog-Authenticated-User-Email",
            "X-CSRFToken",
            "X-Requested-With",
            "If-None-Match",
            "Range",
        ]
    )
    | st.from_regex(r"X-[A-Za-z][A-Za-z0-9-]{0,12}", fullmatch=True),
    latin1_text,
    max_size=3,
)


@pytest.fixture
def known_ids(register, manager):
    """A request in each state: pending, approved, rejected, cancelled, past its deadline."""
    pending, approved, rejected, cancelled, expired = (register()["id"] for _ in range(5))
    services.decide(approved, manager, "approved", "")
    services.decide(rejected, manager, "rejected", "Too much")
    services.cancel(cancelled, "api-token")  # the caller `register` registers as
    ApprovalRequest.objects.filter(pk=expired).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    return [pending, approved, rejected, cancelled, expired]


@pytest.fixture
def tokens(minter):
    return {
        "api-token": f"Bearer {API_TOKEN}",
        "id-token": f"Bearer {minter.token()}",
        "intruder": f"Bearer {minter.token(email='intruder@elsewhere.iam.gserviceaccount.com')}",
        "expired": f"Bearer {minter.token(iat=1_000_000_000, exp=1_000_003_600)}",
        "wrong-audience": f"Bearer {minter.token(aud='https://someone-else.example')}",
        "bare-bearer": "Bearer",
    }


def url_for(path, known_ids) -> tuple[str, str]:
    """The URL for a generated path, and the method its documentation names."""
    kind, arg = path
    if kind == "collection":
        return "/api/approvals", "POST"
    if kind == "openapi":
        return "/api/openapi.json", "GET"
    if kind == "other":
        return "/api/" + quote(arg, safe=""), "GET"
    id_kind, value = arg
    request_id = known_ids[value] if id_kind == "known" else quote(value, safe="")
    if kind == "cancel":
        return f"/api/approvals/{request_id}/cancel", "POST"
    return f"/api/approvals/{request_id}", "GET"


@settings(generated, max_examples=650)
@given(
    method=methods,
    path=paths,
    authorization=authorizations,
    content_type=content_types,
    body=bodies,
    headers=extra_headers,
    execution=st.integers(min_value=0, max_value=10**9),
)
def test_any_request_gets_a_documented_answer(
    client,
    receiver,
    known_ids,
    tokens,
    method,
    path,
    authorization,
    content_type,
    body,
    headers,
    execution,
):
    kind, value = authorization
    if kind == "raw":
        headers["Authorization"] = value
    elif kind == "bearer":
        headers["Authorization"] = f"Bearer {value}"
    elif kind != "none":
        headers["Authorization"] = tokens[kind]

    body_kind, content = body
    if body_kind == "valid":
        content = {
            "callback_url": receiver.callback_url(f"any-{execution}"),
            "title": "Generated",
            "requester_email": "alice@example.com",
        }
    if body_kind in ("json", "valid"):
        content = json.dumps(content).encode()

    url, documented_method = url_for(path, known_ids)
    method = documented_method if method == "documented" else method
    response = client.generic(method, url, content, content_type=content_type, headers=headers)
    assert_documented(response, method)
