"""The registration API: what workflows send, what they get back (contract: "API")."""

import json

import pytest

from approvals import registration
from approvals.models import ApprovalRequest, AuditEvent, Status
from approvals.registration import MAX_DEPTH
from approvals.tests.conftest import API_TOKEN, AUDIENCE, INVOKER
from standins.google import SigningKey

pytestmark = pytest.mark.django_db


def post_json(client, path, body, token=API_TOKEN, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(
        path,
        body if isinstance(body, (str, bytes)) else json.dumps(body),
        content_type=kwargs.pop("content_type", "application/json"),
        headers=headers,
        **kwargs,
    )


def valid_body(receiver, execution="exec-1", **fields):
    body = {
        "callback_url": receiver.callback_url(execution),
        "title": "Team offsite in Lisbon",
        "requester_email": "Alice@Example.com",
        "amount": 1840.5,
        "currency": "eur",
        "description": "Two nights.",
        "details": {"cost_center": "ENG", "lines": [{"item": "Hotel", "amount": "1440.00"}]},
        "assignees": ["Manager@Example.com"],
        "external_id": "EXP-142",
        "timeout_seconds": 3600,
    }
    body.update(fields)
    return body


def test_registration_with_an_id_token_creates_a_pending_request(client, receiver, minter):
    response = post_json(client, "/api/approvals", valid_body(receiver), token=minter.token())

    assert response.status_code == 201
    answer = response.json()
    assert set(answer) == {"id", "status", "url", "expires_at"}
    assert answer["status"] == "pending"
    assert answer["url"] == f"http://testserver/approvals/{answer['id']}/"
    stored = ApprovalRequest.objects.get(pk=answer["id"])
    assert stored.requester_email == "alice@example.com"
    assert str(stored.amount) == "1840.500"
    assert stored.currency == "EUR"
    assert [a.email for a in stored.assignees.all()] == ["manager@example.com"]
    assert stored.registered_by == INVOKER
    assert (stored.expires_at - stored.created_at).total_seconds() == 3600
    assert answer["expires_at"] == stored.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    event = stored.audit_events.get()
    assert (event.kind, event.actor) == (AuditEvent.Kind.REGISTERED, INVOKER)


def test_registration_is_idempotent_on_the_callback_url(client, receiver):
    first = post_json(client, "/api/approvals", valid_body(receiver))
    again = post_json(client, "/api/approvals", valid_body(receiver, title="Changed"))

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert ApprovalRequest.objects.count() == 1
    assert AuditEvent.objects.count() == 1


def test_default_timeout_comes_from_the_settings(client, receiver, approvals_settings):
    approvals_settings.APPROVALS_DEFAULT_TIMEOUT_SECONDS = 7200
    body = valid_body(receiver)
    del body["timeout_seconds"]
    answer = post_json(client, "/api/approvals", body).json()
    stored = ApprovalRequest.objects.get(pk=answer["id"])
    assert (stored.expires_at - stored.created_at).total_seconds() == 7200


def test_amount_may_be_a_string_and_optional_fields_may_be_null(client, receiver):
    body = valid_body(receiver, amount="12.50", description=None, details=None, assignees=None)
    answer = post_json(client, "/api/approvals", body).json()
    stored = ApprovalRequest.objects.get(pk=answer["id"])
    assert str(stored.amount) == "12.500"
    assert stored.description == "" and stored.details == {}
    assert not stored.assignees.exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"callback_url": None}, "callback_url", "required"),
        ({"callback_url": 42}, "callback_url", "string"),
        ({"title": None}, "title", "required"),
        ({"title": "   "}, "title", "empty"),
        ({"title": "x" * 201}, "title", "200"),
        ({"title": ["a"]}, "title", "string"),
        ({"requester_email": None}, "requester_email", "required"),
        ({"requester_email": "not-an-email"}, "requester_email", "e-mail"),
        ({"amount": -1}, "amount", "negative"),
        ({"amount": "twelve"}, "amount", "decimal"),
        ({"amount": True}, "amount", "number"),
        ({"amount": "1.0001"}, "amount", "decimal places"),
        ({"amount": 1e20}, "amount", "large"),
        ({"amount": "NaN"}, "amount", "decimal"),
        ({"amount": "1_000"}, "amount", "decimal"),
        ({"amount": "١٢"}, "amount", "decimal"),
        ({"currency": "ſek"}, "currency", "ISO 4217"),
        ({"requester_email": "a" * 250 + "@x.io"}, "requester_email", "254"),
        ({"currency": None}, "currency", "required with an amount"),
        ({"currency": "EURO"}, "currency", "ISO 4217"),
        ({"currency": "E1R"}, "currency", "ISO 4217"),
        ({"amount": None}, "amount", "required with a currency"),
        ({"description": "x" * 10_001}, "description", "10,000"),
        ({"details": [1, 2]}, "details", "object"),
        ({"details": {"big": "x" * (64 * 1024)}}, "details", "64 KiB"),
        ({"details": {"nul": "a\u0000b"}}, "details", "NUL"),
        ({"assignees": "boss@example.com"}, "assignees", "list"),
        ({"assignees": ["boss@example.com", "nobody"]}, "assignees", "nobody"),
        ({"external_id": "x" * 201}, "external_id", "200"),
        ({"timeout_seconds": 59}, "timeout_seconds", "between"),
        ({"timeout_seconds": 31_536_001}, "timeout_seconds", "between"),
        ({"timeout_seconds": 60.5}, "timeout_seconds", "whole"),
        ({"timeout_seconds": "3600"}, "timeout_seconds", "whole"),
        ({"title": "nul\u0000"}, "title", "NUL"),
        ({"surprise": 1}, "surprise", "Unknown field"),
    ],
)
def test_invalid_fields_are_refused_with_a_message_per_field(
    client, receiver, fields, field, message
):
    response = post_json(client, "/api/approvals", valid_body(receiver, **fields))

    assert response.status_code == 400
    answer = response.json()
    assert answer["error"]
    assert message in " ".join(answer["fields"][field])
    assert not ApprovalRequest.objects.exists()


def test_lone_surrogates_are_refused(client, receiver):
    raw = json.dumps(valid_body(receiver)).replace('"Two nights."', '"\\ud800"')
    response = post_json(client, "/api/approvals", raw)
    assert response.status_code == 400
    assert "Unicode" in response.json()["fields"]["description"][0]


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/v1/projects/p/locations/l/workflows/w/executions/e/callbacks/c",
        "https://workflowexecutions.googleapis.com/v1/projects/p/locations/l/workflows/w/executions/e/callbacks/c",
    ],
)
def test_a_callback_url_outside_the_allowed_prefixes_is_refused(client, receiver, url):
    response = post_json(client, "/api/approvals", valid_body(receiver, callback_url=url))
    assert response.status_code == 400
    assert "allowed prefix" in response.json()["fields"]["callback_url"][0]


@pytest.mark.parametrize(
    "suffix",
    [
        "v1/projects/p/locations/l/workflows/w/executions/e",
        "v1/projects/p/locations/l/workflows/w/executions/e/callbacks/c/extra",
        "v1/projects/p/locations/l/workflows/w/executions/e/callbacks/c?steal=1",
        "v1/projects/p/locations/l/workflows/w/executions/e/callbacks/c#x",
        "v1/projects/../../admin/locations/l/workflows/w/executions/e/callbacks/c",
        "v1/anything",
    ],
)
def test_a_callback_url_without_the_workflows_shape_is_refused(client, receiver, suffix):
    url = receiver.base_url + "/" + suffix
    response = post_json(client, "/api/approvals", valid_body(receiver, callback_url=url))
    assert response.status_code == 400
    assert "callback_url" in response.json()["fields"]


def test_the_default_prefix_only_accepts_google_workflows_callbacks(
    client, approvals_settings, receiver
):
    approvals_settings.APPROVALS_CALLBACK_URL_PREFIXES = [
        "https://workflowexecutions.googleapis.com/v1/"
    ]
    good = "https://workflowexecutions.googleapis.com/v1/projects/p/locations/us-central1/workflows/w/executions/e/callbacks/c"
    tricky = "https://workflowexecutions.googleapis.com.evil.example/v1/projects/p/locations/l/workflows/w/executions/e/callbacks/c"
    assert (
        post_json(client, "/api/approvals", valid_body(receiver, callback_url=good)).status_code
        == 201
    )
    assert (
        post_json(client, "/api/approvals", valid_body(receiver, callback_url=tricky)).status_code
        == 400
    )


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ('{"amount": NaN}', "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ('"just a string"', "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        ("title=x", "application/x-www-form-urlencoded", 415),
        ('{"title": "x"}', "text/plain", 415),
    ],
)
def test_bodies_that_are_not_a_json_object_are_refused(client, body, content_type, status):
    response = post_json(client, "/api/approvals", body, content_type=content_type)
    assert response.status_code == status
    assert response.json()["error"]


def test_deeply_nested_json_is_refused_not_crashed(client):
    response = post_json(client, "/api/approvals", "[" * 100_000 + "]" * 100_000)
    assert response.status_code in (400, 413)
    assert response.json()["error"]


def test_a_body_over_256_kib_is_refused(client, receiver):
    body = valid_body(receiver, description="x" * (260 * 1024))
    response = post_json(client, "/api/approvals", body)
    assert response.status_code == 413
    assert "256 KiB" in response.json()["error"]


def test_wrong_methods_get_a_json_405(client):
    # GET is a method of /api/approvals since "Deciding through the API" (awaiting=me).
    response = client.put("/api/approvals", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"
    assert response.json()["error"]


def test_unknown_api_paths_get_a_json_404(client):
    response = client.get("/api/approvals/not-a-uuid")
    assert response.status_code == 404
    assert response.json()["error"]


# --- Authentication ------------------------------------------------------------------------


def test_no_credentials_gets_401_with_a_bearer_challenge(client, receiver):
    response = post_json(client, "/api/approvals", valid_body(receiver), token=None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not ApprovalRequest.objects.exists()


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer    ", "token abc"])
def test_a_malformed_authorization_header_gets_401(client, receiver, header):
    response = client.post(
        "/api/approvals",
        json.dumps(valid_body(receiver)),
        content_type="application/json",
        headers={"Authorization": header},
    )
    assert response.status_code == 401
    assert "Bearer" in response["WWW-Authenticate"]


def expired(minter):
    return minter.token(iat=1_000_000_000, exp=1_000_003_600)


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda minter: "not.a.jwt", "not a valid"),
        (lambda minter: "garbage", "not a valid"),
        (expired, "expired"),
        (lambda minter: minter.token(aud="https://someone-else.example"), "audience"),
        (lambda minter: minter.token(iss="https://evil.example"), "not issued by the expected"),
        (lambda minter: minter.token(email_verified=False), "not verified"),
        (lambda minter: minter.token(email=None), "no e-mail"),
        (
            lambda minter: minter.token(signer=SigningKey("test-key-1").signer),
            "signature",
        ),
        (
            lambda minter: minter.token(signer=SigningKey("unknown-key").signer),
            "unknown key",
        ),
    ],
    ids=[
        "not-a-jwt",
        "garbage",
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "email-not-verified",
        "no-email",
        "bad-signature",
        "unknown-key",
    ],
)
def test_an_unacceptable_id_token_gets_401(client, receiver, minter, make_token, reason):
    response = post_json(client, "/api/approvals", valid_body(receiver), token=make_token(minter))

    assert response.status_code == 401
    assert reason in response.json()["error"]
    assert response["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert not ApprovalRequest.objects.exists()


def test_a_valid_token_of_an_invoker_not_allowed_gets_403(client, receiver, minter):
    token = minter.token(email="intruder@other-project.iam.gserviceaccount.com")
    response = post_json(client, "/api/approvals", valid_body(receiver), token=token)
    assert response.status_code == 403
    assert "not allowed" in response.json()["error"]


def test_the_invoker_email_is_compared_without_case(client, receiver, minter):
    token = minter.token(email=INVOKER.upper())
    assert post_json(client, "/api/approvals", valid_body(receiver), token=token).status_code == 201


def test_a_token_a_little_past_expiry_is_accepted_within_the_clock_skew(client, receiver, minter):
    import time

    now = int(time.time())
    token = minter.token(iat=now - 3600, exp=now - 5)
    assert post_json(client, "/api/approvals", valid_body(receiver), token=token).status_code == 201


def test_with_no_invokers_and_no_api_token_nobody_is_let_in(
    client, receiver, minter, approvals_settings
):
    approvals_settings.APPROVALS_ALLOWED_INVOKERS = []
    approvals_settings.APPROVALS_API_TOKEN = ""
    for token in (minter.token(), API_TOKEN):
        response = post_json(client, "/api/approvals", valid_body(receiver), token=token)
        assert response.status_code == 403
    assert not ApprovalRequest.objects.exists()


def test_a_wrong_static_token_is_refused_when_only_tokens_are_configured(
    client, receiver, approvals_settings
):
    approvals_settings.APPROVALS_ALLOWED_INVOKERS = []
    response = post_json(client, "/api/approvals", valid_body(receiver), token=API_TOKEN + "x")
    assert response.status_code == 401


def test_unreachable_certs_give_503_not_401(client, receiver, minter, approvals_settings):
    from standins.http import free_port

    approvals_settings.APPROVALS_OIDC_CERTS_URL = f"http://127.0.0.1:{free_port()}/certs"
    response = post_json(client, "/api/approvals", valid_body(receiver), token=minter.token())
    assert response.status_code == 503
    assert response.json()["error"]


def test_the_audience_is_the_configured_one(client, receiver, minter, approvals_settings):
    assert approvals_settings.APPROVALS_OIDC_AUDIENCE == AUDIENCE
    response = post_json(
        client, "/api/approvals", valid_body(receiver), token=minter.token(aud="http://testserver")
    )
    assert response.status_code == 401


# --- State and cancel -------------------------------------------------------------------------


def test_get_answers_the_state_of_a_request(client, register):
    created = register()
    response = client.get(
        f"/api/approvals/{created['id']}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": created["id"],
        "status": "pending",
        "url": created["url"],
        "expires_at": created["expires_at"],
        "decided_by": None,
        "decided_at": None,
        "comment": None,
        "on_behalf_of": None,
        "required_approvals": 1,
        "decisions": [],
        "inputs": {},  # the contract's "Richer decisions": always there
        "escalates_at": None,
        "delivery": {"status": "none", "attempts": 0, "last_error": None},
    }


def test_get_needs_credentials_and_an_existing_id(client, register):
    created = register()
    assert client.get(f"/api/approvals/{created['id']}").status_code == 401
    missing = client.get(
        "/api/approvals/00000000-0000-0000-0000-000000000000",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert missing.status_code == 404
    assert missing.json()["error"]


def test_cancel_closes_a_pending_request_and_is_idempotent(client, register):
    created = register()
    path = f"/api/approvals/{created['id']}/cancel"
    first = post_json(client, path, {})
    again = post_json(client, path, {})

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["status"] == "cancelled"
    request = ApprovalRequest.objects.get(pk=created["id"])
    assert request.status == Status.CANCELLED
    assert request.audit_events.filter(kind=AuditEvent.Kind.CANCELLED).count() == 1


def test_cancel_after_a_decision_gets_409(client, register, manager):
    from approvals import services

    created = register()
    services.decide(created["id"], manager, "approved", "")
    response = post_json(client, f"/api/approvals/{created['id']}/cancel", {})
    assert response.status_code == 409
    assert response.json()["status"] == "approved"
    assert "already approved by manager@example.com" in response.json()["error"]


# --- Each caller sees only its own requests -----------------------------------------------------

OTHER_INVOKER = "other-workflow@demo-project.iam.gserviceaccount.com"


@pytest.fixture
def two_invokers(approvals_settings):
    approvals_settings.APPROVALS_ALLOWED_INVOKERS = [INVOKER, OTHER_INVOKER]


def credentials(minter, caller):
    """The bearer token of `caller`: "token" (the static API token) or an invoker's e-mail."""
    return API_TOKEN if caller == "token" else minter.token(email=caller)


# (the caller that registers, another caller)
CALLER_PAIRS = pytest.mark.parametrize(
    ("owner", "other"),
    [(INVOKER, OTHER_INVOKER), ("token", INVOKER), (INVOKER, "token")],
    ids=["invoker-and-another-invoker", "token-and-invoker", "invoker-and-token"],
)


@CALLER_PAIRS
def test_another_caller_cannot_read_a_request(client, receiver, minter, two_invokers, owner, other):
    created = post_json(client, "/api/approvals", valid_body(receiver), credentials(minter, owner))
    path = f"/api/approvals/{created.json()['id']}"

    theirs = client.get(path, headers={"Authorization": f"Bearer {credentials(minter, other)}"})
    missing = client.get(
        "/api/approvals/00000000-0000-0000-0000-000000000000",
        headers={"Authorization": f"Bearer {credentials(minter, other)}"},
    )
    mine = client.get(path, headers={"Authorization": f"Bearer {credentials(minter, owner)}"})

    assert theirs.status_code == 404
    assert theirs.json() == missing.json()  # the same answer as for an id that does not exist
    assert mine.status_code == 200


@CALLER_PAIRS
def test_another_caller_cannot_cancel_a_request(
    client, receiver, minter, two_invokers, owner, other
):
    created = post_json(client, "/api/approvals", valid_body(receiver), credentials(minter, owner))
    path = f"/api/approvals/{created.json()['id']}/cancel"

    theirs = post_json(client, path, {}, credentials(minter, other))

    assert theirs.status_code == 404
    assert ApprovalRequest.objects.get().status == Status.PENDING
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.CANCELLED).exists()
    assert post_json(client, path, {}, credentials(minter, owner)).status_code == 200


@CALLER_PAIRS
def test_another_caller_registering_the_same_callback_url_gets_409_without_the_id(
    client, receiver, minter, two_invokers, owner, other
):
    first = post_json(client, "/api/approvals", valid_body(receiver), credentials(minter, owner))

    again = post_json(client, "/api/approvals", valid_body(receiver), credentials(minter, other))

    assert again.status_code == 409
    assert "another caller" in again.json()["error"]
    assert first.json()["id"] not in again.content.decode()
    assert set(again.json()) == {"error"}
    assert ApprovalRequest.objects.get().registered_by == (
        "api-token" if owner == "token" else owner
    )
    assert AuditEvent.objects.count() == 1


def test_an_invoker_is_one_caller_whatever_the_case_of_its_token_e_mail(client, receiver, minter):
    created = post_json(client, "/api/approvals", valid_body(receiver), minter.token())
    path = f"/api/approvals/{created.json()['id']}"
    shouting = minter.token(email=INVOKER.upper())

    assert client.get(path, headers={"Authorization": f"Bearer {shouting}"}).status_code == 200
    again = post_json(client, "/api/approvals", valid_body(receiver), shouting)
    assert (again.status_code, again.json()["id"]) == (200, created.json()["id"])


# --- Nesting depth and control characters at the door -------------------------------------


def nested_json(levels: int) -> str:
    """JSON text of objects nested `levels` deep (`{}` alone is one level)."""
    return '{"a": ' * (levels - 1) + "{}" + "}" * (levels - 1)


def with_raw_field(receiver, name: str, raw: str) -> str:
    """A valid registration body's text, with the field `name` holding the JSON text `raw`."""
    body = json.dumps({key: value for key, value in valid_body(receiver).items() if key != name})
    return body[:-1] + f', "{name}": {raw}' + "}"


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 100, 926, 927, 950, 2_000, 30_000])
@pytest.mark.parametrize("field", ["details", "assignees", "description"])
def test_fields_nested_deeper_than_the_limit_are_refused_naming_the_field(
    client, receiver, field, levels
):
    raw = nested_json(levels) if field != "assignees" else "[" * levels + "]" * levels
    response = post_json(client, "/api/approvals", with_raw_field(receiver, field, raw))

    assert response.status_code == 400, response.content[:300]
    assert f"at most {MAX_DEPTH} levels" in response.json()["fields"][field][0]
    assert not ApprovalRequest.objects.exists()


def test_details_at_the_depth_limit_are_accepted_and_stored(client, receiver):
    raw = nested_json(MAX_DEPTH)
    response = post_json(client, "/api/approvals", with_raw_field(receiver, "details", raw))

    assert response.status_code == 201, response.content
    assert ApprovalRequest.objects.get().details == json.loads(raw)


def test_the_depth_limit_also_holds_for_details_handed_to_the_parser_directly(receiver):
    """`registration.parse` is the door whoever calls it, not only the HTTP body's pre-scan."""
    details = {}
    for _ in range(MAX_DEPTH):
        details = {"a": details}
    with pytest.raises(registration.InvalidRegistration) as refused:
        registration.parse(valid_body(receiver, details=details))
    assert f"at most {MAX_DEPTH} levels" in refused.value.errors["details"][0]


@pytest.mark.parametrize(
    "character", ["\t", "\n", "\r", "\r\n", "\x0b", "\x1b", "\x7f", "\x85", "\u2028", "\u202e"]
)
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "Team{}offsite"),
        ("title", "Team offsite{}"),
        ("requester_email", "alice@example.com{}"),
        ("currency", "EUR{}"),
        ("external_id", "EXP-{}142"),
        ("assignees", ["manager@example.com{}"]),
        ("assignee_groups", ["fin{}ance"]),
        ("escalate_to", ["fin{}ance"]),
    ],
)
def test_control_characters_are_refused_in_one_line_fields(
    client, receiver, finance, field, value, character
):
    value = (
        [item.format(character) for item in value]
        if isinstance(value, list)
        else value.format(character)
    )
    body = valid_body(receiver, **{field: value})
    if field in ("assignee_groups", "escalate_to"):
        # The group exists, so only its name's characters can be refused.
        finance.name = value[0]
        finance.save()
    if field == "escalate_to":
        body["escalate_after_seconds"] = 600
    response = post_json(client, "/api/approvals", body)

    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not ApprovalRequest.objects.exists()


@pytest.mark.parametrize(
    "shape",
    [
        "{base}/v1/projects/p/locations/l/workflows/w/executions/e{c}/callbacks/c",
        "{base}/v1/projects/p/locations/l/workflows/w/executions/e/callbacks/c{c}",
        "{base}/v1/pro{c}jects/p/locations/l/workflows/w/executions/e/callbacks/c",
        "{c}{base}/v1/projects/p/locations/l/workflows/w/executions/e/callbacks/c",
    ],
)
@pytest.mark.parametrize("character", ["\t", "\n", "\r", " ", "\x00", "\x0c", "\x7f"])
def test_whitespace_and_control_characters_in_a_callback_url_are_refused(
    client, receiver, shape, character
):
    url = shape.format(base=receiver.base_url, c=character)
    response = post_json(client, "/api/approvals", valid_body(receiver, callback_url=url))

    assert response.status_code == 400, (url, response.content)
    assert "callback_url" in response.json()["fields"]
    assert not ApprovalRequest.objects.exists()


def test_the_description_keeps_line_breaks_and_tabs(client, receiver):
    text = "Two nights.\nHotel:\t1440.00\r\nTrain:\t400.50\u2028end"
    response = post_json(client, "/api/approvals", valid_body(receiver, description=text))
    assert response.status_code == 201, response.content
    assert ApprovalRequest.objects.get().description == text


@pytest.mark.parametrize("character", ["\x1b", "\x07", "\x08", "\x7f", "\x9b"])
def test_the_description_refuses_other_control_characters(client, receiver, character):
    body = valid_body(receiver, description=f"Two{character}nights")
    response = post_json(client, "/api/approvals", body)
    assert response.status_code == 400
    assert "control characters" in response.json()["fields"]["description"][0]
