"""The OpenAPI description (approvals/api/openapi.json) against the real endpoints.

Three checks: the document is OpenAPI 3.1-shaped and names exactly the API's routes and methods;
every answer the endpoints give, for each status a test can bring about, is one the document
describes for that operation (JSON valid against the documented schema, documented headers
present and well-formed); and `GET /api/openapi.json` serves it to anyone.

`check_answer()` is the conformance check; test_api_properties.py runs it on generated requests.
"""

import json
import re
import uuid
from datetime import timedelta
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import OperationalError
from django.test import Client
from django.urls import URLPattern, resolve
from django.utils import timezone
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from approvals import delivery, services
from approvals import urls as approval_urls
from approvals.api import decisions
from approvals.api import views as api
from approvals.models import ApprovalRequest
from approvals.tests.conftest import API_TOKEN

pytestmark = pytest.mark.django_db

DOCUMENT = json.loads(Path(api.__file__).with_name("openapi.json").read_text(encoding="utf-8"))
BASE_URI = "urn:approver:openapi"
REGISTRY = Registry().with_resource(
    BASE_URI, Resource(contents=DOCUMENT, specification=DRAFT202012)
)
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ID_PATTERN = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Which view answers each documented operation (the URL names in approvals/urls.py).
VIEWS = {
    # GET and POST of /api/approvals share one route, which hands each to its view.
    "registerApproval": ("approvals:api-approvals", decisions.collection),
    "listAwaiting": ("approvals:api-approvals", decisions.collection),
    "getApproval": ("approvals:api-approval", api.approval),
    "cancelApproval": ("approvals:api-cancel", api.cancel),
    "decideApproval": ("approvals:api-decision", decisions.decision),
    "getOpenApi": ("approvals:api-openapi", api.openapi),
}


# --- Reading the document ---------------------------------------------------------------------


def escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def lookup(pointer: str):
    """The value at a JSON pointer (`/a/b`) in the document."""
    value = DOCUMENT
    for segment in pointer.split("/")[1:]:
        segment = segment.replace("~1", "/").replace("~0", "~")
        value = value[int(segment)] if isinstance(value, list) else value[segment]
    return value


def followed(pointer: str) -> tuple[str, dict]:
    """The pointer and value at `pointer`, following a Reference Object (`{"$ref": ...}`)."""
    value = lookup(pointer)
    while set(value) == {"$ref"}:
        pointer = value["$ref"].removeprefix("#")
        value = lookup(pointer)
    return pointer, value


def operations():
    for path, item in DOCUMENT["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


def template_of(url_path: str) -> str | None:
    """The documented path template a URL path falls under, or None."""
    for template in DOCUMENT["paths"]:
        pattern = re.escape(template).replace(re.escape("{id}"), ID_PATTERN)
        if re.fullmatch(pattern, url_path):
            return template
    return None


@cache
def validator(pointer: str) -> Draft202012Validator:
    """Validates instances against the schema at `pointer`, `$ref`s resolved in the document."""
    return Draft202012Validator(
        {"$ref": f"{BASE_URI}#{pointer}"},
        registry=REGISTRY,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def schema_errors(pointer: str, instance) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in validator(pointer).iter_errors(instance)
    ]


def described_response(template: str | None, method: str, status: int) -> tuple[str, dict]:
    """Where the document describes this answer, as (pointer, Response Object): the operation's
    response for the status, or the 405 response for a method the path does not document. Paths
    outside the document (the catch-all JSON 404) have none: ("", {})."""
    if template is None:
        assert status == 404, f"a path outside the document answered {status}"
        return "", {}
    item = DOCUMENT["paths"][template]
    if method not in item:
        assert status == 405, f"{method.upper()} {template} is not documented but got {status}"
        return followed("/components/responses/MethodNotAllowed")
    responses = item[method]["responses"]
    assert str(status) in responses, f"{method.upper()} {template}: {status} is not documented"
    return followed(f"/paths/{escape(template)}/{method}/responses/{status}")


def check_answer(response, method: str | None = None, path: str | None = None):
    """Assert that a test-client answer is one the document describes: a documented status for
    the operation, JSON valid against the documented schema, the documented headers present and
    well-formed. Returns the JSON body (None for HEAD, whose body the client drops)."""
    method = (method or response.request["REQUEST_METHOD"]).lower()
    path = path or response.request["PATH_INFO"]
    template = template_of(path)
    pointer, described = described_response(template, method, response.status_code)
    assert response["Content-Type"] == "application/json", response["Content-Type"]

    for name in described.get("headers", {}):
        header_pointer, header = followed(f"{pointer}/headers/{escape(name)}")
        if name not in response.headers:
            assert not header.get("required"), f"{response.status_code} without {name}"
            continue
        value = response.headers[name]
        if header["schema"].get("type") == "integer":
            assert value.isdigit(), f"{name}: {value!r}"
            value = int(value)
        problems = schema_errors(f"{header_pointer}/schema", value)
        assert not problems, (name, response.headers[name], problems)
    if response.status_code == 405:
        documented = sorted(m.upper() for m in DOCUMENT["paths"][template] if m in HTTP_METHODS)
        assert response["Allow"] == ", ".join(documented)

    if method == "head":
        return None
    body = json.loads(response.content)
    if pointer:
        assert set(described["content"]) == {"application/json"}
        schema_pointer = f"{pointer}/content/application~1json/schema"
    else:
        schema_pointer = "/components/schemas/Error"
    problems = schema_errors(schema_pointer, body)
    assert not problems, (method, path, response.status_code, problems, body)
    return body


def request_body_pointer() -> str:
    return "/paths/~1api~1approvals/post/requestBody/content/application~1json/schema"


# --- 1. The document's shape, and the routes it names ------------------------------------------


def all_refs(value, where=""):
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield where, item
            else:
                yield from all_refs(item, f"{where}/{escape(key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from all_refs(item, f"{where}/{index}")


def all_schemas(value, where=""):
    """Every Schema Object in the document outside components/schemas (inline ones)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "schema" and isinstance(item, dict):
                yield f"{where}/schema", item
            else:
                yield from all_schemas(item, f"{where}/{escape(key)}")


def test_the_document_is_openapi_3_1_shaped():
    assert DOCUMENT["openapi"] == "3.1.0"
    assert DOCUMENT["info"]["title"] and DOCUMENT["info"]["version"]
    assert set(DOCUMENT) <= {
        "openapi",
        "info",
        "jsonSchemaDialect",
        "servers",
        "paths",
        "webhooks",
        "components",
        "security",
        "tags",
        "externalDocs",
    }
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert {scheme["scheme"] for scheme in schemes.values()} == {"bearer"}
    for requirement in DOCUMENT["security"]:
        assert set(requirement) <= set(schemes)

    operation_ids = [op["operationId"] for _path, _method, op in operations()]
    assert len(operation_ids) == len(set(operation_ids))
    for path, method, op in operations():
        assert path.startswith("/")
        assert op["responses"], (path, method)
        for status in op["responses"]:
            assert re.fullmatch(r"[1-5][0-9][0-9]", status), (path, method, status)
            _pointer, response = followed(
                f"/paths/{escape(path)}/{method}/responses/{escape(status)}"
            )
            assert response["description"]
            assert set(response.get("content", {})) <= {"application/json"}
        # Every path template variable is a declared, required path parameter, and back.
        parameters = [
            followed(ref["$ref"].removeprefix("#"))[1] if "$ref" in ref else ref
            for ref in DOCUMENT["paths"][path].get("parameters", []) + op.get("parameters", [])
        ]
        declared = {p["name"] for p in parameters if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), path
        assert all(p["required"] for p in parameters if p["in"] == "path")


def test_every_reference_resolves():
    refs = list(all_refs(DOCUMENT))
    assert refs
    for where, ref in refs:
        assert ref.startswith("#/"), (where, ref)
        lookup(ref.removeprefix("#"))  # raises KeyError when dangling


@pytest.mark.parametrize("name", sorted(DOCUMENT["components"]["schemas"]))
def test_each_component_schema_is_a_valid_2020_12_schema(name):
    Draft202012Validator.check_schema(DOCUMENT["components"]["schemas"][name])


def test_each_inline_schema_is_a_valid_2020_12_schema():
    inline = list(all_schemas(DOCUMENT))
    assert len(inline) > 10
    for _where, schema in inline:
        Draft202012Validator.check_schema(schema)


def test_the_examples_fit_their_schemas():
    example = lookup("/paths/~1api~1approvals/post/requestBody/content/application~1json/example")
    assert not schema_errors(request_body_pointer(), example)
    example = lookup("/paths/~1api~1approvals/post/responses/400/content/application~1json/example")
    assert not schema_errors("/components/schemas/Error", example)


def test_the_cancel_conflict_is_the_state_plus_an_error():
    state = DOCUMENT["components"]["schemas"]["State"]
    conflict = DOCUMENT["components"]["schemas"]["CancelConflict"]
    assert set(conflict["properties"]) == set(state["properties"]) | {"error"}
    assert set(conflict["required"]) == set(state["required"]) | {"error"}


def test_the_request_schema_names_exactly_the_fields_the_server_reads():
    from approvals.registration import FIELDS

    schema = DOCUMENT["components"]["schemas"]["Registration"]
    assert set(schema["properties"]) == FIELDS
    assert schema["additionalProperties"] is False


def api_routes():
    """(template, pattern) for every route of approvals/urls.py under api/, but the catch-all."""
    routes = []
    for pattern in approval_urls.urlpatterns:
        route = str(pattern.pattern)
        if route == "^api/":
            continue
        if route.startswith("api/"):
            routes.append(("/" + re.sub(r"<(?:\w+:)?\w+>", "{id}", route), pattern))
    return routes


def test_every_api_route_is_documented_and_every_documented_path_is_routed():
    routes = api_routes()
    assert {template for template, _pattern in routes} == set(DOCUMENT["paths"])
    # The catch-all JSON 404 comes last, after every documented route.
    patterns = [str(p.pattern) for p in approval_urls.urlpatterns]
    assert patterns[-1] == "^api/"
    assert all(isinstance(p, URLPattern) for _template, p in routes)


@pytest.mark.parametrize(("path", "method"), [(p, m) for p, m, _op in operations()])
def test_each_documented_operation_resolves_to_its_view(path, method):
    op = DOCUMENT["paths"][path][method]
    url_name, view = VIEWS[op["operationId"]]
    match = resolve(path.replace("{id}", str(uuid.uuid4())))
    assert match.view_name == url_name
    assert match.func is view


@pytest.mark.parametrize("path", sorted(DOCUMENT["paths"]))
def test_each_path_answers_exactly_its_documented_methods(client, path):
    """A documented method is handled by the view; any other answers the documented 405."""
    url = path.replace("{id}", str(uuid.uuid4()))
    documented = {m for m in DOCUMENT["paths"][path] if m in HTTP_METHODS}
    for method in HTTP_METHODS:
        response = client.generic(
            method.upper(), url, headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        if method in documented:
            assert response.status_code != 405, (method, path)
        else:
            assert response.status_code == 405, (method, path, response.status_code)
        check_answer(response, method, url)


# --- 2. Conformance: each documented answer, as the real endpoints give it -----------------------


def post(client, path, body, token=API_TOKEN, content_type="application/json", **headers):
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(path, data, content_type=content_type, headers=headers)


def get(client, path, token=API_TOKEN):
    return client.get(path, headers={"Authorization": f"Bearer {token}"} if token else {})


def test_201_then_200_for_the_same_callback_url(client, registration_body, minter):
    body = registration_body(
        description="Two nights.",
        details={"lines": [{"item": "Hotel", "amount": "1440.00"}], "n": 1.5, "ok": None},
        assignees=["Manager@Example.com", "manager@example.com"],
        external_id="EXP-142",
        timeout_seconds=3600,
    )
    first = post(client, "/api/approvals", body, token=minter.token())
    assert first.status_code == 201
    created = check_answer(first)
    again = post(client, "/api/approvals", {**body, "title": "Changed"}, token=minter.token())
    assert again.status_code == 200
    assert check_answer(again) == created


def test_409_for_the_same_callback_url_from_another_caller(client, registration_body, minter):
    body = registration_body()
    assert post(client, "/api/approvals", body, token=minter.token()).status_code == 201
    taken = post(client, "/api/approvals", body)  # the static token: another caller
    assert taken.status_code == 409
    assert set(check_answer(taken)) == {"error"}


def test_200_for_a_registration_already_decided_carries_its_status_now(
    client, registration_body, manager
):
    body = registration_body()
    created = check_answer(post(client, "/api/approvals", body))
    services.decide(created["id"], manager, "approved", "")
    again = post(client, "/api/approvals", body)
    assert again.status_code == 200
    assert check_answer(again)["status"] == "approved"


def test_state_before_and_after_a_decision_and_its_delivery(client, register, manager, receiver):
    created = register()
    path = f"/api/approvals/{created['id']}"
    pending = check_answer(get(client, path))
    assert pending["status"] == "pending" and pending["delivery"]["status"] == "none"

    callback_path = urlsplit(ApprovalRequest.objects.get(pk=created["id"]).callback_url).path
    receiver.answers[callback_path] = [503]
    services.decide(created["id"], manager, "rejected", "Too much")
    due = check_answer(get(client, path))
    assert (due["status"], due["delivery"]["status"]) == ("rejected", "due")

    assert delivery.send(created["id"]) == "retrying"
    retrying = check_answer(get(client, path))
    assert retrying["delivery"]["last_error"].startswith("HTTP 503")

    ApprovalRequest.objects.filter(pk=created["id"]).update(delivery_next_attempt_at=timezone.now())
    assert delivery.send(created["id"]) == "delivered"
    delivered = check_answer(get(client, path))
    assert delivered["delivery"] == {"status": "delivered", "attempts": 2, "last_error": None}
    assert delivered["comment"] == "Too much"


def test_an_approval_without_a_comment_answers_an_empty_comment(client, register, manager):
    created = register()
    services.decide(created["id"], manager, "approved", "")
    state = check_answer(get(client, f"/api/approvals/{created['id']}"))
    assert (state["status"], state["comment"]) == ("approved", "")


def test_state_of_a_request_past_its_deadline(client, register):
    created = register()
    ApprovalRequest.objects.filter(pk=created["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert check_answer(get(client, f"/api/approvals/{created['id']}"))["status"] == "expired"
    cancelled = post(client, f"/api/approvals/{created['id']}/cancel", {})
    assert check_answer(cancelled)["status"] == "expired"


def test_cancel_200_twice_then_409_after_a_decision(client, register, manager):
    created = register()
    path = f"/api/approvals/{created['id']}/cancel"
    # The body is ignored, whatever it is.
    first = post(client, path, b"\xff not json", content_type="text/plain")
    again = post(client, path, {})
    assert (first.status_code, again.status_code) == (200, 200)
    assert check_answer(first)["status"] == check_answer(again)["status"] == "cancelled"

    decided = register()
    services.decide(decided["id"], manager, "approved", "fine")
    conflict = post(client, f"/api/approvals/{decided['id']}/cancel", {})
    assert conflict.status_code == 409
    body = check_answer(conflict)
    assert body["status"] == "approved" and body["decided_by"] == "manager@example.com"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"callback_url", "title", "requester_email"}),
        ({"title": "x" * 201, "surprise": 1}, {"title", "surprise"}),
        ("{not json", None),
        ("[1, 2]", None),
        ('{"amount": NaN}', None),
    ],
    ids=["missing", "too-long-and-unknown", "not-json", "not-an-object", "nan"],
)
def test_400_with_and_without_fields(client, registration_body, body, fields):
    if isinstance(body, dict):
        body = {**registration_body(), **body} if body else body
    response = post(client, "/api/approvals", body)
    assert response.status_code == 400
    answer = check_answer(response)
    if fields is None:
        assert "fields" not in answer
    else:
        assert fields <= set(answer["fields"])


def test_401_answers_carry_the_documented_challenge(client, registration_body, minter):
    for headers in (
        {},
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {minter.token(aud='https://someone-else.example')}"},
    ):
        response = client.post(
            "/api/approvals",
            json.dumps(registration_body()),
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 401
        check_answer(response)
    for method, path in (
        ("GET", f"/api/approvals/{uuid.uuid4()}"),
        ("POST", f"/api/approvals/{uuid.uuid4()}/cancel"),
    ):
        response = client.generic(method, path)
        assert response.status_code == 401
        check_answer(response)


def test_403_for_an_invoker_not_allowed_and_when_no_caller_is_configured(
    client, registration_body, minter, approvals_settings
):
    intruder = minter.token(email="intruder@other-project.iam.gserviceaccount.com")
    response = post(client, "/api/approvals", registration_body(), token=intruder)
    assert response.status_code == 403
    check_answer(response)
    assert "WWW-Authenticate" not in response.headers

    approvals_settings.APPROVALS_ALLOWED_INVOKERS = []
    approvals_settings.APPROVALS_API_TOKEN = ""
    for response in (
        post(client, "/api/approvals", registration_body()),
        get(client, f"/api/approvals/{uuid.uuid4()}"),
        post(client, f"/api/approvals/{uuid.uuid4()}/cancel", {}),
    ):
        assert response.status_code == 403
        check_answer(response)


def test_404_for_unknown_ids_and_paths(client):
    for response in (
        get(client, f"/api/approvals/{uuid.uuid4()}"),
        post(client, f"/api/approvals/{uuid.uuid4()}/cancel", {}),
    ):
        assert response.status_code == 404
        check_answer(response)
    for path in ("/api/approvals/NOT-A-UUID", "/api/approvals/", "/api/nothing-here"):
        response = client.get(path)  # outside the document: a JSON 404, no credentials needed
        assert response.status_code == 404
        check_answer(response)


def test_413_and_415(client, registration_body):
    too_big = post(client, "/api/approvals", registration_body(description="x" * (257 * 1024)))
    assert too_big.status_code == 413
    check_answer(too_big)
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx"):
        response = post(client, "/api/approvals", "{}", content_type=content_type)
        assert response.status_code == 415
        check_answer(response)
    # Parameters of the media type are fine.
    with_charset = post(
        client,
        "/api/approvals",
        registration_body(),
        content_type="application/json; charset=utf-8",
    )
    assert with_charset.status_code == 201
    check_answer(with_charset)


def test_503_when_the_certs_cannot_be_fetched(
    client, registration_body, minter, approvals_settings
):
    from standins.http import free_port

    approvals_settings.APPROVALS_OIDC_CERTS_URL = f"http://127.0.0.1:{free_port()}/certs"
    response = post(client, "/api/approvals", registration_body(), token=minter.token())
    assert response.status_code == 503
    check_answer(response)
    assert response["Retry-After"] == "5"


@pytest.mark.parametrize(
    ("problem", "status"),
    [(OperationalError("connection refused"), 503), (RuntimeError("bug"), 500)],
)
def test_503_when_the_database_is_away_and_500_for_a_bug(
    registration_body, monkeypatch, problem, status
):
    client = Client(raise_request_exception=False)

    def failing(*args, **kwargs):
        raise problem

    monkeypatch.setattr("approvals.services.register", failing)
    monkeypatch.setattr("approvals.services.cancel", failing)
    monkeypatch.setattr("approvals.api.views._find", failing)
    for response in (
        post(client, "/api/approvals", registration_body()),
        get(client, f"/api/approvals/{uuid.uuid4()}"),
        post(client, f"/api/approvals/{uuid.uuid4()}/cancel", {}),
    ):
        assert response.status_code == status
        check_answer(response)
        assert ("Retry-After" in response.headers) == (status == 503)


# --- The request schema and the server agree on the field rules ----------------------------------

# Bodies the schema accepts, which the server registers.
VALID = [
    {},
    {"amount": 0, "currency": "usd"},
    {"amount": "999999999999999.999", "currency": "JPY"},
    {"amount": 12, "currency": "EUR", "timeout_seconds": 60},
    {"amount": None, "currency": None},
    {"title": "x" * 200, "external_id": "x" * 200, "description": "x" * 10_000},
    {"assignees": [f"a{n}@example.com" for n in range(100)], "timeout_seconds": 31_536_000},
    {"details": {"nested": {"list": [1, "two", None, True]}}, "timeout_seconds": 3600.0},
    {"description": None, "details": None, "assignees": None, "external_id": None},
]

# (overrides, field): bodies the schema refuses and the server refuses naming that field.
INVALID = [
    ({"callback_url": None}, "callback_url"),
    ({"callback_url": 42}, "callback_url"),
    ({"callback_url": "suffix?query=1"}, "callback_url"),
    ({"callback_url": "suffix#fragment"}, "callback_url"),
    ({"callback_url": "suffix/extra"}, "callback_url"),
    ({"title": None}, "title"),
    ({"title": ""}, "title"),
    ({"title": "   "}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"title": "nul\u0000"}, "title"),
    ({"title": ["a"]}, "title"),
    ({"requester_email": None}, "requester_email"),
    ({"requester_email": "not-an-email"}, "requester_email"),
    ({"amount": -1}, "amount"),
    ({"amount": "-1"}, "amount"),
    ({"amount": "twelve"}, "amount"),
    ({"amount": True}, "amount"),
    ({"amount": "1.0001"}, "amount"),
    ({"amount": 10**15}, "amount"),
    ({"amount": "1000000000000000"}, "amount"),
    ({"amount": [1]}, "amount"),
    ({"amount": None}, "amount"),
    ({"currency": None}, "currency"),
    ({"currency": "EURO"}, "currency"),
    ({"currency": "E1R"}, "currency"),
    ({"currency": 978}, "currency"),
    ({"description": "x" * 10_001}, "description"),
    ({"description": "a\u0000b"}, "description"),
    ({"details": [1, 2]}, "details"),
    ({"details": "{}"}, "details"),
    ({"assignees": "boss@example.com"}, "assignees"),
    ({"assignees": ["boss@example.com", "nobody"]}, "assignees"),
    ({"assignees": [f"a{n}@example.com" for n in range(101)]}, "assignees"),
    ({"external_id": "x" * 201}, "external_id"),
    ({"external_id": 142}, "external_id"),
    ({"timeout_seconds": 59}, "timeout_seconds"),
    ({"timeout_seconds": 31_536_001}, "timeout_seconds"),
    ({"timeout_seconds": 60.5}, "timeout_seconds"),
    ({"timeout_seconds": "3600"}, "timeout_seconds"),
    ({"timeout_seconds": True}, "timeout_seconds"),
    ({"surprise": 1}, "surprise"),
]


def full_body(receiver, execution, overrides):
    body = {
        "callback_url": receiver.callback_url(execution),
        "title": "Team offsite",
        "requester_email": "alice@example.com",
        **overrides,
    }
    if isinstance(body["callback_url"], str) and body["callback_url"].startswith("suffix"):
        body["callback_url"] = receiver.callback_url(execution) + body["callback_url"][6:]
    return body


@pytest.mark.parametrize("overrides", VALID, ids=[str(n) for n in range(len(VALID))])
def test_bodies_the_schema_accepts_are_registered(client, receiver, overrides):
    body = full_body(receiver, f"valid-{uuid.uuid4().hex[:8]}", overrides)
    assert not schema_errors(request_body_pointer(), body)
    response = post(client, "/api/approvals", body)
    assert response.status_code == 201, response.content
    check_answer(response)


@pytest.mark.parametrize(
    ("overrides", "field"), INVALID, ids=[f"{n}-{field}" for n, (_o, field) in enumerate(INVALID)]
)
def test_bodies_the_schema_refuses_are_refused_naming_the_field(client, receiver, overrides, field):
    base = {"amount": "12.50", "currency": "EUR"}
    if "amount" in overrides or "currency" in overrides:
        base = {}
        if "amount" not in overrides:
            base["amount"] = "12.50"
        if "currency" not in overrides:
            base["currency"] = "EUR"
    body = full_body(receiver, "invalid", {**base, **overrides})
    assert schema_errors(request_body_pointer(), body), body
    response = post(client, "/api/approvals", body)
    assert response.status_code == 400
    assert field in check_answer(response)["fields"]
    assert not ApprovalRequest.objects.exists()


# --- 3. The document itself, served -----------------------------------------------------------


def test_the_document_is_served_without_credentials(client, approvals_settings):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    served = check_answer(response)
    assert served["openapi"] == "3.1.0"
    assert served["servers"] == [{"url": approvals_settings.APPROVALS_BASE_URL}]
    assert {key: value for key, value in served.items() if key != "servers"} == {
        key: value for key, value in DOCUMENT.items() if key != "servers"
    }


def test_the_document_takes_only_get(client):
    response = client.post("/api/openapi.json", "{}", content_type="application/json")
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    check_answer(response)


# --- Where the code does not keep the document yet (reported; the code is not this file's) -------

LONG_EMAIL = "a" * 64 + "@" + ("b" * 60 + ".") * 4 + "com"  # 312 characters; Django allows 320


def wide_callback_url(receiver):
    """Under 2,000 characters but not ASCII, and over PostgreSQL's 2,704-byte limit for a
    unique-index entry."""
    middle = "".join(chr(0x4E00 + (n * 7919) % 0x5000) for n in range(1500))
    return receiver.base_url + "/v1/" + middle + "/v1" + receiver.callback_url("e").split("/v1")[-1]


@pytest.mark.parametrize(
    ("make_fields", "field"),
    [
        (lambda receiver: {"requester_email": LONG_EMAIL}, "requester_email"),
        (lambda receiver: {"assignees": [LONG_EMAIL]}, "assignees"),
        (
            lambda receiver: {"callback_url": receiver.callback_url("e" * 2001)},
            "callback_url",
        ),
        (lambda receiver: {"callback_url": wide_callback_url(receiver)}, "callback_url"),
    ],
    ids=["requester-email", "assignee", "callback-url", "wide-callback-url"],
)
def test_values_beyond_the_documented_limits_are_refused(
    receiver, registration_body, make_fields, field
):
    body = registration_body(**make_fields(receiver))
    assert schema_errors(request_body_pointer(), body)
    response = post(Client(raise_request_exception=False), "/api/approvals", body)
    assert response.status_code == 400, response.status_code
    assert field in check_answer(response)["fields"]


def test_a_foreign_host_header_gets_a_json_error(client):
    response = client.get(f"/api/approvals/{uuid.uuid4()}", headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
