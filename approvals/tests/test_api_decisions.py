"""Deciding through the API with a personal token (contract: "Deciding through the API (people
and bots)"): which tokens are accepted, what awaits a person, and every answer of a decision, in
the contract's order. Every answer is also checked against the OpenAPI document."""

import hashlib
import json
import logging
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from approvals import services
from approvals.identity import tokens
from approvals.models import (
    ApprovalRequest,
    AuditEvent,
    Decision,
    Delegation,
    PersonalToken,
    Status,
)
from approvals.tests.conftest import API_TOKEN
from approvals.tests.test_openapi import check_answer

pytestmark = pytest.mark.django_db


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def awaiting(client, secret, query="awaiting=me"):
    return client.get(f"/api/approvals?{query}", headers=bearer(secret))


def decide(client, request_id, secret, body=None, content_type="application/json"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body or {"decision": "approved"})
    return client.post(
        f"/api/approvals/{request_id}/decision",
        data,
        content_type=content_type,
        headers=bearer(secret),
    )


@pytest.fixture
def token_of():
    """A new personal token's whole text for `user` (keyword arguments go to `tokens.issue`)."""

    def issue(user, **options):
        return tokens.issue(user, options.pop("name", "script"), **options).secret

    return issue


@pytest.fixture
def manager_token(manager, token_of):
    return token_of(manager)


# --- Which tokens are accepted ------------------------------------------------------------------


def test_a_valid_token_lists_what_awaits_its_owner(client, register, manager_token):
    created = register()
    response = awaiting(client, manager_token)
    assert response.status_code == 200
    body = check_answer(response)
    assert [row["id"] for row in body["results"]] == [created["id"]]
    assert body["results"][0]["status"] == "pending"
    assert body["next"] is None


def expire(secret):
    PersonalToken.objects.filter(digest=tokens.digest(secret)).update(
        created_at=timezone.now() - timedelta(days=91), expires_at=timezone.now()
    )


def revoke(secret):
    PersonalToken.objects.filter(digest=tokens.digest(secret)).update(revoked_at=timezone.now())


def deactivate(secret):
    user = PersonalToken.objects.get(digest=tokens.digest(secret)).user
    user.is_active = False
    user.save(update_fields=["is_active"])


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (expire, "The token has expired."),
        (revoke, "The token was revoked."),
        (deactivate, "The token's account is inactive."),
        (lambda secret: None, None),  # valid: the control case
    ],
    ids=["expired", "revoked", "inactive-account", "valid"],
)
def test_expired_revoked_and_inactive_tokens_get_401_everywhere(
    client, register, manager_token, spoil, message
):
    created = register()
    spoil(manager_token)
    answers = [
        awaiting(client, manager_token),
        client.get(f"/api/approvals/{created['id']}", headers=bearer(manager_token)),
        decide(client, created["id"], manager_token),
    ]
    for response in answers:
        check_answer(response)
        if message is None:
            assert response.status_code == 200
            continue
        assert response.status_code == 401
        assert response.json()["error"] == message
        assert response["WWW-Authenticate"] == (
            f'Bearer error="invalid_token", error_description="{message}"'
        )
    assert ApprovalRequest.objects.get().status == (Status.PENDING if message else Status.APPROVED)


@pytest.mark.parametrize(
    "credential",
    [
        "apr_",
        "apr_unknown",
        "apr_abcdefghjkmn_" + "x" * 43,
        "apr_\u00e9\u00e9",
        "apr_" + "a" * 5000,
    ],
    ids=["mark-only", "short", "well-formed-unknown", "latin-1", "long"],
)
def test_unknown_tokens_get_401(client, register, manager_token, credential):
    created = register()
    for response in (
        awaiting(client, credential),
        decide(client, created["id"], credential),
        client.get(f"/api/approvals/{created['id']}", headers=bearer(credential)),
    ):
        assert response.status_code == 401
        assert check_answer(response)["error"] == "The token is not valid."


def test_a_token_is_stored_only_as_its_sha256_digest(manager, token_of):
    secret = token_of(manager, name="expense bot")
    stored = PersonalToken.objects.get()
    assert stored.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith(stored.prefix + "_")
    assert len(secret) > len(stored.prefix) + 40
    columns = [str(value) for value in PersonalToken.objects.values().get().values()]
    assert not any(secret in column or secret[len(stored.prefix) :] in column for column in columns)


def test_each_token_is_new(manager, token_of):
    secrets = {token_of(manager) for _ in range(5)}
    assert len(secrets) == 5
    assert len(set(PersonalToken.objects.values_list("prefix", flat=True))) == 5


def test_every_use_notes_the_time_at_most_once_a_minute(client, manager_token):
    token = PersonalToken.objects.get()
    assert token.last_used_at is None

    assert awaiting(client, manager_token).status_code == 200
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None and timezone.now() - first < timedelta(seconds=5)

    assert awaiting(client, manager_token).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at == first  # within the minute: not written again

    PersonalToken.objects.update(last_used_at=first - timedelta(minutes=2))
    assert awaiting(client, manager_token).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at > first


def test_personal_tokens_work_when_no_workflow_caller_is_configured(
    client, register, manager_token, approvals_settings
):
    created = register()
    approvals_settings.APPROVALS_ALLOWED_INVOKERS = []
    approvals_settings.APPROVALS_API_TOKEN = ""
    assert awaiting(client, manager_token).status_code == 200
    assert decide(client, created["id"], manager_token).status_code == 200


def test_tokens_never_reach_the_logs_or_the_audit_log(
    client, register, manager, token_of, caplog, django_capture_on_commit_callbacks
):
    created = register()
    secret = token_of(manager)
    revoked = token_of(manager)
    revoke(revoked)
    with caplog.at_level(logging.DEBUG), django_capture_on_commit_callbacks(execute=True):
        assert awaiting(client, revoked).status_code == 401
        assert decide(client, created["id"], secret).status_code == 200
        assert token_of(manager)
    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    audited = " ".join(str(e.payload) + e.actor for e in AuditEvent.objects.all())
    for whole in (secret, revoked):
        for part in (whole, whole.split("_", 2)[2]):  # the whole, and its secret part
            assert part not in logged
            assert part not in audited
    assert PersonalToken.objects.first().prefix in logged  # the public part names it


# --- Wrong kind of caller ----------------------------------------------------------------------


@pytest.fixture
def workflow_credentials(minter):
    return {"api-token": API_TOKEN, "id-token": minter.token()}


@pytest.mark.parametrize("kind", ["api-token", "id-token"])
def test_a_workflows_credentials_cannot_list_awaiting_or_decide(
    client, register, workflow_credentials, kind
):
    created = register()
    credential = workflow_credentials[kind]
    for response in (awaiting(client, credential), decide(client, created["id"], credential)):
        assert response.status_code == 403
        assert "personal access token" in check_answer(response)["error"]
        assert "WWW-Authenticate" not in response
    assert ApprovalRequest.objects.get().status == Status.PENDING


def test_a_personal_token_cannot_register_or_cancel(
    client, register, registration_body, manager_token
):
    created = register()
    registered = client.post(
        "/api/approvals",
        registration_body(),
        content_type="application/json",
        headers=bearer(manager_token),
    )
    cancelled = client.post(f"/api/approvals/{created['id']}/cancel", headers=bearer(manager_token))
    for response in (registered, cancelled):
        assert response.status_code == 403
        assert "cannot register or cancel" in check_answer(response)["error"]
    assert ApprovalRequest.objects.get().status == Status.PENDING


def test_a_person_reads_the_requests_they_may_see_and_no_other(
    client, register, make_user, token_of
):
    boss = make_user("boss")
    mine = register(requester_email="asker@example.com")
    theirs = register(assignees=["someone@example.com"])
    asker = make_user("asker", approver=False)
    for secret, request_id, status in [
        (token_of(boss), mine["id"], 200),
        (token_of(boss), theirs["id"], 404),
        (token_of(asker), mine["id"], 200),  # their own request: seen, never decided
        (token_of(asker), theirs["id"], 404),
        (token_of(boss), str(uuid.uuid4()), 404),
    ]:
        response = client.get(f"/api/approvals/{request_id}", headers=bearer(secret))
        assert response.status_code == status, (request_id, status)
        body = check_answer(response)
        if status == 200:
            assert body["id"] == request_id


def test_a_workflow_still_reads_only_its_own_requests(client, register, minter):
    created = register()  # with the static token
    response = client.get(f"/api/approvals/{created['id']}", headers=bearer(minter.token()))
    assert response.status_code == 404


# --- GET /api/approvals?awaiting=me ------------------------------------------------------------


def test_awaiting_lists_exactly_what_the_person_may_decide_now(
    client, register, make_user, manager, manager_token
):
    other = make_user("other")
    waiting = register(title="Waiting")
    register(title="Own", requester_email="manager@example.com")
    register(title="Someone else's", assignees=["other@example.com"])
    decided = register(title="Decided")
    services.decide(decided["id"], other, "approved", "")
    expired = register(title="Expired")
    ApprovalRequest.objects.filter(pk=expired["id"]).update(expires_at=timezone.now())
    two = register(title="Needs two", required_approvals=2)
    services.decide(two["id"], manager, "approved", "")  # had their say
    both = register(title="Two, one given", required_approvals=2)
    services.decide(both["id"], other, "approved", "")

    body = check_answer(awaiting(client, manager_token))

    assert [row["id"] for row in body["results"]] == [waiting["id"], both["id"]]
    assert body["results"][1]["decisions"][0]["decided_by"] == "other@example.com"


def test_awaiting_includes_what_a_delegate_may_decide(client, register, make_user, token_of):
    dana, bob = make_user("dana"), make_user("bob")
    created = register(assignees=["dana@example.com"])
    now = timezone.now()
    Delegation.objects.create(
        delegator=dana, delegate=bob, starts_at=now, ends_at=now + timedelta(days=1)
    )
    body = check_answer(awaiting(client, token_of(bob)))
    assert [row["id"] for row in body["results"]] == [created["id"]]


def test_a_person_without_the_decide_permission_awaits_nothing(
    client, register, make_user, token_of
):
    register()
    nobody = make_user("nobody", approver=False)
    body = check_answer(awaiting(client, token_of(nobody)))
    assert body == {"results": [], "next": None}


def test_awaiting_pages_oldest_first_and_next_follows_to_the_end(client, register, manager_token):
    created = [register(title=f"Request {n}")["id"] for n in range(5)]
    # Two of them registered in the same microsecond: the id orders them.
    same = timezone.now() - timedelta(hours=1)
    ApprovalRequest.objects.filter(pk__in=created[1:3]).update(created_at=same)
    ApprovalRequest.objects.filter(pk=created[0]).update(created_at=same - timedelta(hours=1))
    expected = [created[0], *sorted(created[1:3]), *created[3:]]

    pages, url = [], "/api/approvals?awaiting=me&limit=2"
    while url:
        body = check_answer(client.get(url, headers=bearer(manager_token)))
        pages.append([row["id"] for row in body["results"]])
        url = body["next"]
        if url:
            parts = urlsplit(url)
            assert f"{parts.scheme}://{parts.netloc}" == "http://testserver"
            assert "limit=2" in parts.query
            url = f"{parts.path}?{parts.query}"
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [row for page in pages for row in page] == expected


def test_a_full_last_page_has_no_next(client, register, manager_token):
    for n in range(2):
        register(title=f"Request {n}")
    body = check_answer(awaiting(client, manager_token, "awaiting=me&limit=2"))
    assert len(body["results"]) == 2 and body["next"] is None
    body = check_answer(awaiting(client, manager_token, "awaiting=me&limit=1"))
    assert len(body["results"]) == 1 and body["next"]


def test_the_default_page_holds_fifty(client, register, manager_token):
    for n in range(51):
        register(title=f"Request {n}")
    body = check_answer(awaiting(client, manager_token))
    assert len(body["results"]) == 50
    assert "limit" not in body["next"]
    following = check_answer(client.get(body["next"], headers=bearer(manager_token)))
    assert len(following["results"]) == 1 and following["next"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "awaiting"),
        ("awaiting=you", "awaiting"),
        ("awaiting=ME", "awaiting"),
        ("awaiting=me&awaiting=me", "awaiting"),
        ("awaiting=me&limit=0", "limit"),
        ("awaiting=me&limit=101", "limit"),
        ("awaiting=me&limit=ten", "limit"),
        ("awaiting=me&limit=-1", "limit"),
        ("awaiting=me&limit=%EF%BC%91", "limit"),  # a full-width digit one
        ("awaiting=me&limit=" + "9" * 5000, "limit"),
        ("awaiting=me&cursor=nonsense", "cursor"),
        ("awaiting=me&cursor=", "cursor"),
        ("awaiting=me&cursor=%00%FF", "cursor"),
        ("awaiting=me&cursor=MjAyNi0wMS0wMVQwMDowMDowMHxub3QtYS11dWlk", "cursor"),
        (
            "awaiting=me&cursor=MjAyNi0wMS0wMVQwMDowMDowMHwwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA",
            "cursor",
        ),
        ("awaiting=me&status=pending", "status"),
    ],
)
def test_a_query_it_cannot_answer_gets_400_naming_the_parameter(
    client, manager_token, query, field
):
    response = awaiting(client, manager_token, query)
    assert response.status_code == 400
    assert field in check_answer(response)["fields"]


# --- POST /api/approvals/<id>/decision: what it does --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_decision_through_the_api_is_the_pages_decision_with_its_audit_and_callback(
    client, register, manager, manager_token, receiver
):
    created = register()
    prefix = PersonalToken.objects.get().prefix

    response = decide(
        client, created["id"], manager_token, {"decision": "approved", "comment": " Fine "}
    )

    assert response.status_code == 200
    state = check_answer(response)
    assert (state["status"], state["decided_by"], state["comment"]) == (
        "approved",
        "manager@example.com",
        "Fine",
    )
    assert state["delivery"]["status"] == "delivered"
    [callback] = receiver.received
    assert callback.body["decision"] == "approved"
    assert callback.body["decided_by"] == "manager@example.com"
    assert callback.body["comment"] == "Fine"
    approval = ApprovalRequest.objects.get()
    event = approval.audit_events.get(kind=AuditEvent.Kind.APPROVED)
    assert event.actor == "manager@example.com"
    assert event.payload == {"comment": "Fine", "via": {"channel": "api", "token": prefix}}
    assert approval.decisions.get().user == manager


@pytest.mark.django_db(transaction=True)
def test_a_rejection_through_the_api_carries_its_comment(client, register, manager_token, receiver):
    created = register()
    body = {"decision": "rejected", "comment": "Over budget.", "inputs": {}}
    response = decide(client, created["id"], manager_token, body)
    assert response.status_code == 200
    assert check_answer(response)["status"] == "rejected"
    assert receiver.received[0].body["decision"] == "rejected"
    assert receiver.received[0].body["comment"] == "Over budget."


def test_a_delegate_decides_through_the_api_on_the_delegators_behalf(
    client, register, make_user, token_of
):
    dana, bob = make_user("dana"), make_user("bob")
    created = register(assignees=["dana@example.com"])
    now = timezone.now()
    Delegation.objects.create(
        delegator=dana, delegate=bob, starts_at=now, ends_at=now + timedelta(days=1)
    )
    state = check_answer(decide(client, created["id"], token_of(bob)))
    assert (state["decided_by"], state["on_behalf_of"]) == ("bob@example.com", "dana@example.com")


def test_one_approval_of_two_answers_the_pending_state(client, register, make_user, manager_token):
    make_user("other")
    created = register(required_approvals=2)
    response = decide(client, created["id"], manager_token)
    assert response.status_code == 200
    state = check_answer(response)
    assert state["status"] == "pending"
    assert [d["decided_by"] for d in state["decisions"]] == ["manager@example.com"]


# --- Every answer, and their order --------------------------------------------------------------

INVALID = '{"decision": "maybe", "surprise": 1}'


def test_401_comes_before_everything(client, register):
    created = register()
    for request_id in (created["id"], str(uuid.uuid4())):
        response = decide(client, request_id, "apr_nonsense", INVALID, content_type="text/plain")
        assert response.status_code == 401
        check_answer(response)


def test_404_for_a_request_the_person_may_not_see_whatever_the_body(
    client, register, manager_token
):
    hidden = register(assignees=["someone@example.com"])
    for request_id in (hidden["id"], str(uuid.uuid4())):
        for body, content_type in ((INVALID, "application/json"), ("x", "text/plain")):
            response = decide(client, request_id, manager_token, body, content_type)
            assert response.status_code == 404
            assert check_answer(response)["error"] == "There is no approval request with this id."
    assert ApprovalRequest.objects.get().status == Status.PENDING


@pytest.fixture
def auditing_approver(make_user):
    """An approver who also audits: sees every request, may decide only what names them."""
    user = make_user("audrey")
    group, _ = Group.objects.get_or_create(name="Auditors")
    group.permissions.add(
        Permission.objects.get(codename="view_auditevent", content_type__app_label="approvals")
    )
    user.groups.add(group)
    return user


@pytest.mark.parametrize(
    ("who", "fields", "message"),
    [
        ("requester", {"requester_email": "manager@example.com"}, "You asked for this approval"),
        ("auditor", {"assignees": ["someone@example.com"]}, "assigned to other people"),
        ("no-permission", {}, "do not have permission"),
    ],
)
@pytest.mark.parametrize("closed", [False, True], ids=["open", "closed"])
def test_403_for_a_person_who_may_not_decide_it_before_409_and_400(
    client, register, make_user, token_of, auditing_approver, auditor, who, fields, message, closed
):
    created = register(**fields)
    person = {
        "requester": lambda: make_user("manager"),
        "auditor": lambda: auditing_approver,
        "no-permission": lambda: auditor,  # sees every request, decides none
    }[who]()
    if closed:
        services.cancel(created["id"], "api-token")
    response = decide(client, created["id"], token_of(person), INVALID)
    assert response.status_code == 403
    assert message in check_answer(response)["error"]


def test_409_when_they_already_decided_it_before_400(
    client, register, make_user, manager, manager_token
):
    make_user("other")
    created = register(required_approvals=2)
    services.decide(created["id"], manager, "approved", "")
    response = decide(client, created["id"], manager_token, INVALID)
    assert response.status_code == 409
    body = check_answer(response)
    assert body["error"].startswith("You already approved this request.")
    assert body["status"] == "pending"


@pytest.mark.parametrize("how", ["decided", "cancelled", "expired", "delegate-decided"])
def test_409_with_the_state_when_it_is_closed_or_their_say_was_given(
    client, register, make_user, manager, manager_token, how
):
    other = make_user("other")
    if how == "delegate-decided":  # named with another, so that it stays open after one
        created = register(
            required_approvals=2, assignees=["manager@example.com", "other@example.com"]
        )
    else:
        created = register()
    expected = {"decided": "approved", "cancelled": "cancelled", "expired": "expired"}
    if how == "decided":
        services.decide(created["id"], other, "approved", "")
    elif how == "cancelled":
        services.cancel(created["id"], "api-token")
    elif how == "expired":
        ApprovalRequest.objects.filter(pk=created["id"]).update(expires_at=timezone.now())
    else:
        stand_in = make_user("standin")
        now = timezone.now()
        Delegation.objects.create(
            delegator=manager, delegate=stand_in, starts_at=now, ends_at=now + timedelta(days=1)
        )
        services.decide(created["id"], stand_in, "approved", "")
        assert Decision.objects.get().on_behalf_of == "manager@example.com"
    response = decide(client, created["id"], manager_token, INVALID)
    assert response.status_code == 409
    body = check_answer(response)
    assert body["status"] == expected.get(how, "pending")
    assert body["error"]
    if how == "expired":  # recorded, as a read records it
        assert ApprovalRequest.objects.get().status == Status.EXPIRED


def test_a_decision_that_loses_the_race_gets_409(
    client, register, make_user, manager_token, monkeypatch
):
    created = register()
    faster = make_user("faster")
    decide_for_real = services.decide

    def someone_was_faster(request_id, user, outcome, comment, **options):
        decide_for_real(request_id, faster, "rejected", "No.")
        return decide_for_real(request_id, user, outcome, comment, **options)

    monkeypatch.setattr(services, "decide", someone_was_faster)
    response = decide(client, created["id"], manager_token)
    assert response.status_code == 409
    body = check_answer(response)
    assert body["error"] == "This request was already rejected by faster@example.com."
    assert body["status"] == "rejected"


LONG = "x" * 5001


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", None),
        ("[1, 2]", None),
        ('"approved"', None),
        ("null", None),
        ("{}", "decision"),
        ({"decision": None}, "decision"),
        ({"decision": "maybe"}, "decision"),
        ({"decision": "Approved"}, "decision"),
        ({"decision": 1}, "decision"),
        ({"decision": ["approved"]}, "decision"),
        ({"decision": {"approved": True}}, "decision"),
        ({"decision": "changes_requested", "comment": "Fix the dates."}, "decision"),
        ({"decision": "rejected"}, "comment"),
        ({"decision": "rejected", "comment": "   "}, "comment"),
        ({"decision": "approved", "comment": 5}, "comment"),
        ({"decision": "approved", "comment": ["a"]}, "comment"),
        ({"decision": "approved", "comment": LONG}, "comment"),
        ({"decision": "approved", "comment": "nul\u0000"}, "comment"),
        ({"decision": "approved", "comment": "bell\u0007"}, "comment"),
        ({"decision": "approved", "inputs": {"amount": 5}}, "inputs"),
        ({"decision": "approved", "inputs": []}, "inputs"),
        ({"decision": "approved", "inputs": "{}"}, "inputs"),
        ({"decision": "approved", "surprise": 1}, "surprise"),
        ('{"decision": "approved", "comment": "\\ud800"}', "comment"),
        ('{"decision": NaN}', None),
        ('{"decision": "approved"} trailing', None),
        ('{"decision": "approved", "inputs": ' + "[" * 50 + "]" * 50 + "}", "inputs"),
        ("[" * 100_000 + "]" * 100_000, None),
        (
            '{"decision": "approved", "inputs": {"a": ' + '{"b": ' * 5000 + "1" + "}" * 5001 + "}",
            "inputs",
        ),
    ],
)
def test_400_naming_the_field_for_a_body_it_cannot_take(
    client, register, manager_token, body, field
):
    created = register()
    response = decide(client, created["id"], manager_token, body)
    assert response.status_code == 400, response.content[:200]
    answer = check_answer(response)
    if field:
        assert field in answer["fields"]
    assert ApprovalRequest.objects.get().status == Status.PENDING


def test_changes_requested_is_refused_naming_the_decision(client, register, manager_token):
    created = register()
    body = {"decision": "changes_requested", "comment": "Fix the dates."}
    answer = check_answer(decide(client, created["id"], manager_token, body))
    assert answer["fields"] == {
        "decision": ["This request does not allow changes to be requested."]
    }


def test_every_field_wrong_is_named_at_once(client, register, manager_token):
    created = register()
    body = {"decision": "maybe", "comment": 1, "inputs": {"x": 1}, "extra": True}
    answer = check_answer(decide(client, created["id"], manager_token, body))
    assert set(answer["fields"]) == {"decision", "comment", "inputs", "extra"}


def test_415_and_413_come_with_the_body_after_409(client, register, manager, manager_token):
    created = register()
    response = decide(client, created["id"], manager_token, "decision=approved", "text/plain")
    assert response.status_code == 415
    check_answer(response)
    huge = json.dumps({"decision": "approved", "comment": "x" * (300 * 1024)})
    response = decide(client, created["id"], manager_token, huge)
    assert response.status_code == 413
    check_answer(response)
    services.cancel(created["id"], "api-token")
    response = decide(client, created["id"], manager_token, "x", "text/plain")
    assert response.status_code == 409


def test_empty_and_null_inputs_and_comment_are_accepted(client, register, manager_token):
    first, second = register(), register()
    body = {"decision": "approved", "comment": None, "inputs": None}
    assert decide(client, first["id"], manager_token, body).status_code == 200
    body = {"decision": "approved", "inputs": {}}
    assert decide(client, second["id"], manager_token, body).status_code == 200
