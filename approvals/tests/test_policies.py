"""Approval policies: groups as assignees, several approvals, escalation's effect on who may
decide, and one rule everywhere (README: "Approval policies")."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from django.utils import timezone

from approvals import permissions, services
from approvals.models import (
    ApprovalRequest,
    Assignee,
    AuditEvent,
    Decision,
    Delegation,
    Notice,
    Status,
)
from approvals.notify import chat
from approvals.permissions import people, rules
from approvals.permissions.people import Person, user_email
from approvals.tests import test_slack
from approvals.tests.conftest import API_TOKEN, decide_page, postgres_only, waiting_ids
from approvals.tests.test_concurrency import at_once
from approvals.tests.test_google_chat import chat_approve_agrees

# Real transactions: callbacks are sent after the decision commits (transaction.on_commit).
pytestmark = pytest.mark.django_db(transaction=True)


def post_registration(client, registration_body, **fields):
    return client.post(
        "/api/approvals",
        registration_body(**fields),
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )


def user(username):
    return get_user_model().objects.get(username=username)


# --- Groups as assignees -------------------------------------------------------------------------


def test_the_members_of_a_named_group_may_decide_and_other_approvers_may_not(
    client, register, finance, make_user, receiver
):
    outsider = make_user("olga")
    created = register(assignee_groups=["finance"])

    assert created["id"] in waiting_ids(client, user("fiona"))
    assert created["id"] not in waiting_ids(client, outsider)
    assert client.get(f"/approvals/{created['id']}/").status_code == 404  # olga: not hers to see
    assert decide_page(client, outsider, created["id"], "approved").status_code == 404

    response = decide_page(client, user("fiona"), created["id"], "approved", "Budget is fine")

    assert response.status_code == 302
    [callback] = receiver.received
    assert callback.body["decision"] == "approved"
    assert callback.body["decided_by"] == "fiona@example.com"


def test_assignees_and_groups_together_each_let_their_people_decide(register, finance, make_user):
    make_user("ivan")
    created = register(assignees=["ivan@example.com"], assignee_groups=["finance"])
    request = ApprovalRequest.objects.get(pk=created["id"])

    may = {u.username for u in get_user_model().objects.all() if not _refusal(u, request)}

    assert may == {"ivan", "fiona", "felix"}


def test_a_group_member_without_the_permission_may_not_decide(register, finance, make_user):
    make_user("greta", approver=False).groups.add(finance)
    created = register(assignee_groups=["finance"])
    request = ApprovalRequest.objects.get(pk=created["id"])

    assert "permission" in _refusal(user("greta"), request)


def test_an_unknown_group_is_refused_with_the_field_named(client, registration_body, finance):
    response = post_registration(
        client, registration_body, assignee_groups=["finance", " finance ", "fnance"]
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {"assignee_groups": ["No such group: fnance."]}


@pytest.mark.parametrize(
    "value, message",
    [
        ("finance", "Must be a list of group names."),
        ([""], "A group name has 1 to 150 characters."),
        ([7], "Must be a string."),
        (["g"] * 21, "At most 20 groups."),
    ],
)
def test_malformed_group_lists_are_a_400(client, registration_body, value, message):
    response = post_registration(client, registration_body, assignee_groups=value)

    assert response.status_code == 400
    assert response.json()["fields"] == {"assignee_groups": [message]}


def test_a_deleted_group_lets_nobody_decide_rather_than_everybody(
    client, register, finance, make_user
):
    make_user("olga")
    created = register(assignee_groups=["finance"])
    finance.delete()
    request = ApprovalRequest.objects.get(pk=created["id"])

    assert all(_refusal(u, request) for u in get_user_model().objects.all())
    auditor = make_user("audrey", is_superuser=True)
    client.force_login(auditor)
    page = client.get(f"/approvals/{created['id']}/").content.decode()
    assert "Nobody can decide this request now" in page
    assert "group finance" in page


# --- Several approvals ---------------------------------------------------------------------------


def test_two_approvals_by_different_people_approve_it_and_the_callback_carries_both(
    client, register, make_user, receiver
):
    anna, ben = make_user("anna"), make_user("ben")
    created = register(required_approvals=2)

    first = decide_page(client, anna, created["id"], "approved", "Fine by me")

    assert first.status_code == 302
    request = ApprovalRequest.objects.get(pk=created["id"])
    assert request.status == Status.PENDING and request.approvals_missing == 1
    assert receiver.received == []  # nothing is sent until the outcome is final
    told = [str(m) for m in client.get("/").context["messages"]]
    assert any("waits for 1 more approval" in text for text in told)
    assert created["id"] not in waiting_ids(client, anna)
    assert created["id"] in waiting_ids(client, ben)
    client.force_login(ben)
    page = client.get(f"/approvals/{created['id']}/").content.decode()
    assert "1 of 2: 1 more needed" in page
    assert "Approved</strong> by anna@example.com" in page

    decide_page(client, ben, created["id"], "approved", "")

    request.refresh_from_db()
    assert request.status == Status.APPROVED
    [callback] = receiver.received
    body = callback.body
    assert (body["decision"], body["decided_by"], body["comment"]) == (
        "approved",
        "ben@example.com",
        "",
    )
    assert [(d["decided_by"], d["decision"], d["comment"]) for d in body["decisions"]] == [
        ("anna@example.com", "approved", "Fine by me"),
        ("ben@example.com", "approved", ""),
    ]
    events = request.audit_events.filter(kind=AuditEvent.Kind.APPROVED)
    assert [(e.actor, e.payload["approvals"]) for e in events] == [
        ("anna@example.com", 1),
        ("ben@example.com", 2),
    ]
    state = client.get(
        f"/api/approvals/{created['id']}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    ).json()
    assert state["required_approvals"] == 2 and len(state["decisions"]) == 2
    assert state["decided_by"] == "ben@example.com"


def test_the_first_rejection_ends_a_request_that_needs_several_approvals(
    register, make_user, receiver
):
    anna, ben, carl = make_user("anna"), make_user("ben"), make_user("carl")
    created = register(required_approvals=3)
    services.decide(created["id"], anna, "approved", "")

    services.decide(created["id"], ben, "rejected", "Over budget")

    request = ApprovalRequest.objects.get(pk=created["id"])
    assert request.status == Status.REJECTED
    [callback] = receiver.received
    assert callback.body["decision"] == "rejected"
    assert callback.body["decided_by"] == "ben@example.com"
    assert [d["decision"] for d in callback.body["decisions"]] == ["approved", "rejected"]
    with pytest.raises(services.DecisionRefused, match=r"already rejected by ben@example\.com"):
        services.decide(created["id"], carl, "approved", "")


def test_one_person_cannot_give_two_of_the_approvals(register, make_user):
    anna = make_user("anna")
    make_user("ben")
    created = register(required_approvals=2)
    services.decide(created["id"], anna, "approved", "")

    with pytest.raises(services.DecisionRefused, match="You already approved this request"):
        services.decide(created["id"], anna, "approved", "again")

    assert Decision.objects.filter(request_id=created["id"]).count() == 1


def test_more_approvals_than_people_who_could_give_them_is_a_400(
    client, registration_body, make_user, finance
):
    make_user("anna")
    make_user("alice")  # the requester: never counts
    # Approvers: anna, fiona, felix (3).
    too_many = post_registration(client, registration_body, required_approvals=4)
    assigned = post_registration(
        client, registration_body, assignees=["anna@example.com"], required_approvals=2
    )
    with_escalation = post_registration(
        client,
        registration_body,
        assignees=["anna@example.com"],
        escalate_to=["finance"],
        escalate_after_seconds=3600,
        required_approvals=3,
    )

    assert too_many.status_code == 400
    assert too_many.json()["fields"]["required_approvals"] == [
        "Only 3 approver(s) could decide this request, so it cannot collect 4 approvals. "
        "Name more assignees or groups."
    ]
    assert assigned.status_code == 400
    assert with_escalation.status_code == 201  # anna, then fiona and felix after escalation


@pytest.mark.parametrize("value", [0, 21, "2", True, 1.5, -1])
def test_required_approvals_must_be_a_whole_number_from_1_to_20(client, registration_body, value):
    response = post_registration(client, registration_body, required_approvals=value)

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"required_approvals"}


@postgres_only
def test_three_approvers_at_once_on_a_two_approval_request_give_two_decisions_and_one_callback(
    register, make_user, receiver
):
    people = [make_user(name) for name in ("anna", "ben", "carl")]
    for _ in range(10):
        created = register(required_approvals=2)
        results = at_once(
            *(
                lambda person=person, request_id=created["id"]: services.decide(
                    request_id, person, "approved", ""
                )
                for person in people
            )
        )

        assert sorted(kind for kind, _ in results) == ["error", "ok", "ok"], results
        assert Decision.objects.filter(request_id=created["id"]).count() == 2
        assert ApprovalRequest.objects.get(pk=created["id"]).status == Status.APPROVED
    assert len(receiver.received) == 10
    assert all(len(c.body["decisions"]) == 2 for c in receiver.received)


# --- Escalation: who may decide when -------------------------------------------------------------


def test_escalation_targets_may_decide_only_once_the_escalation_time_has_passed(
    client, register, make_user, finance, receiver
):
    make_user("anna")
    created = register(
        assignees=["anna@example.com"], escalate_to=["finance"], escalate_after_seconds=3600
    )
    request = ApprovalRequest.objects.get(pk=created["id"])
    assert request.escalates_at == request.created_at + datetime.timedelta(hours=1)
    assert "assigned to other people" in _refusal(user("fiona"), request)
    assert created["id"] not in waiting_ids(client, user("fiona"))

    ApprovalRequest.objects.filter(pk=request.pk).update(
        escalates_at=timezone.now() - datetime.timedelta(seconds=1)
    )

    # No pass of `send_notifications` is needed for the right to decide; it only tells people.
    assert created["id"] in waiting_ids(client, user("fiona"))
    response = decide_page(client, user("fiona"), created["id"], "approved", "Escalated, fine")
    assert response.status_code == 302
    assert receiver.received[0].body["decided_by"] == "fiona@example.com"


@pytest.mark.parametrize(
    "fields, errors",
    [
        (
            {"escalate_to": ["boss@example.com"]},
            {"escalate_after_seconds": ["Required with escalate_to."]},
        ),
        (
            {"escalate_after_seconds": 3600},
            {"escalate_to": ["Required with escalate_after_seconds."]},
        ),
        (
            {
                "escalate_to": ["boss@example.com"],
                "escalate_after_seconds": 600,
                "timeout_seconds": 600,
            },
            {"escalate_after_seconds": ["Must be less than the request's timeout (600 seconds)."]},
        ),
        (
            {"escalate_to": ["nobody-group"], "escalate_after_seconds": 600},
            {"escalate_to": ["No such group: nobody-group."]},
        ),
        (
            {"escalate_to": [], "escalate_after_seconds": 600},
            {"escalate_to": ["Must be a non-empty list of e-mail addresses and group names."]},
        ),
        (
            {"escalate_to": ["not an@address"], "escalate_after_seconds": 600},
            {"escalate_to": ["'not an@address' is not an e-mail address."]},
        ),
        (
            {"escalate_to": ["boss@example.com"], "escalate_after_seconds": 59},
            {"escalate_after_seconds": ["Must be between 60 and 31,536,000 seconds."]},
        ),
    ],
)
def test_escalation_fields_are_checked_together(client, registration_body, fields, errors):
    response = post_registration(client, registration_body, **fields)

    assert response.status_code == 400
    assert response.json()["fields"] == errors


# --- One rule everywhere -------------------------------------------------------------------------


SHAPES = [
    "open",
    "group",
    "group and e-mail",
    "before escalation",
    "after escalation",
    "one of two approved",
    "delegated",
    "delegated, delegator approved",
    "delegated, expired delegation",
    "delegation chain",
    "closed",
    "sent back",
    "inputs required",
    "requester under another spelling",
    "assignees under other spellings",
    "delegate is the requester under another spelling",
    "reassigned by a named person",
    "reassigned from a request that named nobody",
    "reassigned by a group member",
    "reassigned twice, then back",
    "reassigned by a request administrator",
    "reassigned to a delegator",
]


@pytest.mark.parametrize("shape", SHAPES)
def test_the_page_the_inbox_the_mail_and_visibility_agree_for_every_user(
    client, register, make_user, finance, slack_app, shape
):
    """For every user and policy shape: `decider_capacity` (the page and the decision), the
    inbox query, `deciders` (the e-mails and "who can decide"), `can_see` and a click on Slack's
    Approve give one answer, and the Slack message offers the page's buttons."""
    request_id = _registered_in_shape(shape, register, make_user)
    request = ApprovalRequest.objects.prefetch_related("assignees", "decisions").get(pk=request_id)
    mailed = {d.user.username: d.on_behalf_of for d in permissions.deciders(request)}

    may = {}
    for person in get_user_model().objects.all():
        person = user(person.username)  # fresh: no cached groups or delegations
        capacity = permissions.decider_capacity(person, request)
        in_inbox = permissions.requests_awaiting(person).filter(pk=request_id).exists()
        assert (capacity.refusal is None) == in_inbox, (shape, person.username, capacity)
        if capacity.refusal is None:
            may[person.username] = capacity.on_behalf_of
            assert permissions.can_see(person, request), (shape, person.username)
            # Nor does the API's first question (403) refuse them.
            assert permissions.standing_refusal(person, request) is None, (shape, person.username)
    assert may == mailed, shape
    assert _slack_deciders(client, slack_app, request) == set(may), shape

    expected = {
        "open": {
            **{"anna": "", "ben": "", "carl": "", "dora": "", "fiona": "", "felix": ""},
            "zed": "",
        },
        "group": {"fiona": "", "felix": ""},
        "group and e-mail": {"anna": "", "fiona": "", "felix": ""},
        "before escalation": {"anna": ""},
        "after escalation": {"anna": "", "ben": "", "fiona": "", "felix": ""},
        "one of two approved": {
            **{"anna": "", "ben": "", "dora": "", "fiona": "", "felix": ""},
            "zed": "",
        },
        "delegated": {"anna": "", "carl": "anna@example.com"},
        "delegated, delegator approved": {"ben": "", "dora": "ben@example.com"},
        "delegated, expired delegation": {"anna": ""},
        "delegation chain": {"anna": "", "carl": "anna@example.com"},
        "closed": {},
        # Sent back by one of two approvers needed: closed at once, nobody decides any more.
        "sent back": {},
        # Inputs change what a decision must carry, never who may give it.
        "inputs required": {"anna": "", "ben": ""},
        "requester under another spelling": {
            **{"anna": "", "ben": "", "carl": "", "dora": "", "fiona": "", "felix": ""},
            "zed": "",
        },
        # ben+x@ is not ben@'s mailbox; zed@ is zed's (his account's e-mail is another spelling).
        "assignees under other spellings": {"anna": "", "zed": "", "carl": ""},
        "delegate is the requester under another spelling": {
            "anna": "",
            "dora": "",
            "zed": "dora@example.com",
        },
        # anna handed her place to ben; carl, her delegate, no longer decides for her.
        "reassigned by a named person": {"ben": "", "dora": ""},
        "reassigned from a request that named nobody": {"ben": ""},
        # fiona (finance) handed it to dora: the group's place is dora's; anna keeps hers.
        "reassigned by a group member": {"anna": "", "dora": ""},
        "reassigned twice, then back": {"anna": "", "carl": "anna@example.com"},
        "reassigned by a request administrator": {"anna": "", "ben": ""},
        # carl stands in for ben, who was handed anna's place.
        "reassigned to a delegator": {"ben": "", "carl": "ben@example.com"},
    }[shape]
    assert may == expected


CLOSED_SHAPES = ("closed", "sent back")


@pytest.mark.parametrize("shape", SHAPES)
def test_the_deciders_of_many_requests_asked_at_once_are_each_ones_own(
    register, make_user, finance, shape
):
    """`deciders_of_many`, which a notice pass asks for its hundreds of requests, gives each
    request in the company of others the answer `deciders` gives it alone."""
    request_id = _registered_in_shape(shape, register, make_user)
    others = [
        register(requester_email="ben@example.com", **fields)["id"]
        for fields in (
            {},
            {
                "assignees": ["anna@example.com"],
                "escalate_to": ["finance"],
                "escalate_after_seconds": 3600,
            },
            {"assignee_groups": ["finance"], "assignees": ["carl@example.com"]},
        )
    ]
    ApprovalRequest.objects.filter(pk=others[1]).update(escalates_at=timezone.now())
    approvals = ApprovalRequest.objects.prefetch_related("assignees", "decisions")
    approvals = list(approvals.filter(pk__in=[request_id, *others]))

    for role in (None, Assignee.Role.ESCALATION):
        together = permissions.deciders_of_many(approvals, role)
        alone = {approval.pk: permissions.deciders(approval, role) for approval in approvals}
        assert {pk: _names(found) for pk, found in together.items()} == {
            pk: _names(found) for pk, found in alone.items()
        }, (shape, role)
    [mine] = [approval for approval in approvals if str(approval.pk) == request_id]
    assert _names(permissions.deciders_of_many(approvals)[mine.pk]) or shape in CLOSED_SHAPES


def _names(deciders) -> list[tuple[str, str]]:
    return [(d.user.username, d.on_behalf_of) for d in deciders]


@pytest.mark.parametrize("shape", SHAPES)
def test_an_approve_from_google_chat_agrees_with_the_page_for_every_user(
    client, register, make_user, finance, signing_key, shape
):
    """For every user and policy shape: Chat's card offers the page's buttons, and an Approve
    from Chat decides exactly when `decider_capacity` lets the person decide."""
    request_id = _registered_in_shape(shape, register, make_user)
    chat_approve_agrees(client, signing_key, request_id)


@pytest.mark.parametrize("shape", SHAPES)
def test_each_rule_gives_one_answer_in_sql_and_in_python(register, make_user, finance, shape):
    """`permissions.rules`: for every user and policy shape, each rule's query (`q`, for the
    inbox and visibility) and its Python test on the loaded request (`holds`, for the page and
    the e-mails) agree, and the escalation notice goes to deciders only."""
    request_id = _registered_in_shape(shape, register, make_user)
    request = ApprovalRequest.objects.prefetch_related("assignees", "decisions").get(pk=request_id)
    facts = rules.Facts.of(request)

    for account in get_user_model().objects.all():
        person = Person.of(user(account.username))
        for name, rule in _every_rule(person, people.delegators_of(person)):
            in_sql = ApprovalRequest.objects.filter(pk=request_id).filter(rule.q).exists()
            assert rule.holds(facts) == in_sql, (shape, account.username, name)

    mailed = {d.user.username: d.on_behalf_of for d in permissions.deciders(request)}
    told = {
        d.user.username: d.on_behalf_of
        for d in permissions.deciders(request, role=Assignee.Role.ESCALATION)
    }
    assert told.items() <= mailed.items(), shape
    assert told == {
        "after escalation": {"ben": "", "fiona": "", "felix": ""},
        "assignees under other spellings": {"carl": ""},
    }.get(shape, {})


def _slack_deciders(client, slack, request) -> set[str]:
    """Who decides with Slack's Approve (and the modal, where it asks for inputs), each clicking
    a message sent while the request still waited, in a transaction rolled back after each, so
    that everyone finds the same state; meanwhile, the message the outbox would send each of
    them offers the page's buttons exactly when they may decide."""
    decided = set()
    page_buttons = [chat.LABELS[outcome] for outcome in request.outcomes]
    for account in get_user_model().objects.order_by("pk"):
        person = user(account.username)
        capacity = permissions.decider_capacity(person, request)
        notice = Notice(request=request, purpose=Notice.Purpose.NEW, email_key=user_email(person))
        shown = [button.label for button in chat.about(notice).buttons]
        if capacity.refusal is None:
            assert shown == page_buttons, person.username
        elif not request.is_open:
            assert shown == [], person.username
        slack_person = slack.add_user(account.email)
        message = test_slack.stale_message(slack, request, slack_person)
        theirs = Decision.objects.filter(request=request, user=person)
        before, told = theirs.count(), len(test_slack.ephemeral(slack))
        with transaction.atomic():
            assert (
                test_slack.click(client, slack, slack_person, "Approve", message).status_code == 200
            )
            opened = [view for view in slack.views if view.user == slack_person]
            if opened:
                values = {"input_cost_center": "0"} if request.inputs else {}
                test_slack.submit(client, slack, slack_person, values, opened[0])
            if theirs.count() > before:
                decided.add(person.username)
            else:  # refused, and told so
                assert len(test_slack.ephemeral(slack)) == told + 1, person.username
            transaction.set_rollback(True)
    return decided


def _every_rule(person, delegators):
    """Each rule of `permissions.rules` as asked about `person`, by name."""
    escalation = {"newly_by_escalation": True}
    yield "names nobody", rules.names_nobody()
    yield "escalated", rules.escalated()
    for role in Assignee.Role.values:
        yield f"names ({role})", rules.names(role, person)
    yield "named", rules.named(person)
    yield "newly named by escalation", rules.named(person, **escalation)
    yield "asked by", rules.asked_by(person)
    yield "had their say", rules.had_say(person)
    yield "handed on", rules.handed_on(person)
    yield "free to decide", rules.free_to_decide(person)
    yield "may decide, newly by escalation", rules.may_decide(person, **escalation)
    for delegator, rule in rules.standings(person, delegators):
        by = delegator.email if delegator else "themselves"
        yield f"in line ({by})", rules.in_line(person, delegator)
        yield f"may decide ({by})", rule
    yield "sees", rules.sees(person, delegators)


def _registered_in_shape(shape, register, make_user):
    """Register a request in policy `shape` among the same people (and the `finance` group's
    fiona and felix); return its id."""
    for name in ("anna", "ben", "carl", "dora"):
        make_user(name)
    make_user("nora", approver=False)
    make_user("alice")  # the requester
    make_user("zed", email='"Zed"@ｅxample.com')  # an account e-mail SQL cannot compare
    make_user("alice2", email="Alice+Work@Example.com")  # the requester's sub-address
    now = timezone.now()

    def delegation(delegator, delegate, starts=-1, ends=1):
        Delegation.objects.create(
            delegator=user(delegator),
            delegate=user(delegate),
            starts_at=now + datetime.timedelta(days=starts),
            ends_at=now + datetime.timedelta(days=ends),
        )

    fields = {
        "open": {},
        "group": {"assignee_groups": ["finance"]},
        "group and e-mail": {"assignee_groups": ["finance"], "assignees": ["anna@example.com"]},
        "before escalation": {
            "assignees": ["anna@example.com"],
            "escalate_to": ["finance", "ben@example.com"],
            "escalate_after_seconds": 3600,
        },
        "after escalation": {
            "assignees": ["anna@example.com"],
            "escalate_to": ["finance", "ben@example.com"],
            "escalate_after_seconds": 3600,
        },
        "one of two approved": {"required_approvals": 2},
        "delegated": {"assignees": ["anna@example.com", "alice@example.com"]},
        "delegated, delegator approved": {
            "assignees": ["anna@example.com", "ben@example.com"],
            "required_approvals": 2,
        },
        "delegated, expired delegation": {"assignees": ["anna@example.com"]},
        "delegation chain": {"assignees": ["anna@example.com"]},
        "closed": {},
        "sent back": {"allow_changes_requested": True, "required_approvals": 2},
        "inputs required": {
            "assignees": ["anna@example.com", "ben@example.com"],
            "inputs": [
                {
                    "name": "cost_center",
                    "label": "Cost center",
                    "type": "choice",
                    "choices": ["R&D", "Sales"],
                    "required": True,
                    "when": ["approved", "rejected"],
                },
            ],
        },
        "requester under another spelling": {"requester_email": '"Alice+Trip"@ｅxample.com'},
        "assignees under other spellings": {
            "assignees": ['"Anna"@EXAMPLE.com', "ben+x@example.com", "zed@example.com"],
            "escalate_to": ["CARL@ｅxample.com"],
            "escalate_after_seconds": 60,
        },
        "delegate is the requester under another spelling": {
            "requester_email": "carl+trip@example.com",
            "assignees": ["anna@example.com", "dora@example.com"],
        },
        "reassigned by a named person": {"assignees": ["anna@example.com", "dora@example.com"]},
        "reassigned from a request that named nobody": {},
        "reassigned by a group member": {
            "assignee_groups": ["finance"],
            "assignees": ["anna@example.com"],
        },
        "reassigned twice, then back": {"assignees": ["anna@example.com"]},
        "reassigned by a request administrator": {"assignees": ["anna@example.com"]},
        "reassigned to a delegator": {"assignees": ["anna@example.com"]},
    }[shape]
    created = register(**{"requester_email": "alice@example.com", **fields})
    request_id = created["id"]
    if shape in ("after escalation", "assignees under other spellings"):
        ApprovalRequest.objects.filter(pk=request_id).update(escalates_at=now)
    if shape == "delegate is the requester under another spelling":
        delegation("anna", "carl")
        delegation("dora", "zed")
    if shape == "one of two approved":
        services.decide(request_id, user("carl"), "approved", "")
    if shape == "delegated":
        delegation("anna", "carl")
        delegation("anna", "alice")  # the requester stands in: still never for her own request
    if shape == "delegated, delegator approved":
        delegation("anna", "carl")
        delegation("ben", "dora")
        services.decide(request_id, user("anna"), "approved", "")
    if shape == "delegated, expired delegation":
        delegation("anna", "carl", starts=-3, ends=-1)
        delegation("anna", "dora", starts=1, ends=2)
    if shape == "delegation chain":
        delegation("anna", "carl")
        delegation("carl", "dora")
    if shape == "closed":
        services.decide(request_id, user("anna"), "rejected", "no")
    if shape == "sent back":
        services.decide(request_id, user("anna"), "changes_requested", "Fix the dates.")
    _reassigned_in_shape(shape, request_id, delegation, make_user)
    return request_id


def _reassigned_in_shape(shape, request_id, delegation, make_user):
    """The reassignments of the "reassigned ..." shapes, through `services.reassign`."""
    hand = services.reassign
    if shape == "reassigned by a named person":
        delegation("anna", "carl")
        hand(request_id, user("anna"), "ben@example.com")
    if shape == "reassigned from a request that named nobody":
        hand(request_id, user("carl"), "ben@example.com", "yours")
    if shape == "reassigned by a group member":
        hand(request_id, user("fiona"), "dora@example.com")
    if shape == "reassigned twice, then back":
        delegation("anna", "carl")
        hand(request_id, user("anna"), "ben@example.com")
        hand(request_id, user("ben"), "dora@example.com")
        hand(request_id, user("dora"), "anna@example.com")
    if shape == "reassigned by a request administrator":
        admin = make_user("rita", approver=False)
        admin.user_permissions.add(Permission.objects.get(codename="reassign_approvalrequest"))
        hand(request_id, user("rita"), "ben@example.com")
    if shape == "reassigned to a delegator":
        delegation("ben", "carl")
        hand(request_id, user("anna"), "ben@example.com")


def _refusal(person, request):
    return permissions.decision_refusal(user(person.username), request)
