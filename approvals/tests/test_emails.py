"""One canonical form of an e-mail address (`approvals/emails.py`), and every comparison of people
made through it: the requester never decides their own request under another spelling, and an
assignee named under another spelling of their mailbox is still the one named."""

import datetime

import pytest
from django.utils import timezone

from approvals import emails, permissions, services
from approvals.models import ApprovalRequest, Decision, Delegation
from approvals.tests.conftest import decide_page, waiting_ids

pytestmark = pytest.mark.django_db

# --- The canonical form --------------------------------------------------------------------------

# Spellings of one mailbox: one canonical form (and so one person).
ONE_MAILBOX = [
    ("Ann@Example.com", "ann@example.com"),
    ("  ann@example.com\n", "ann@example.com"),
    ('"ann"@example.com', "ann@example.com"),
    ('"a\\nn"@example.com', "ann@example.com"),  # a quoted pair is the character itself
    ('"Ann.Lee"@Example.COM', "ann.lee@example.com"),
    ("ann@ｅxample.com", "ann@example.com"),  # full-width e (NFKC)
    ("ＡＮＮ＠ＥＸＡＭＰＬＥ．ＣＯＭ", "ann@example.com"),  # all full-width, @ and dot too
    ("ann@ex\u00adample.com", "ann@example.com"),  # a soft hyphen is nothing (UTS 46)
    ("ann@example.com.", "ann@example.com"),  # the root's dot
    ("ann@EXAMPLE.com", "ann@example.com"),
    ("ann@Bücher.de", "ann@xn--bcher-kva.de"),  # IDNA: the A-label
    ("ann@bu\u0308cher.de", "ann@xn--bcher-kva.de"),  # decomposed ü
    ("ann@XN--BCHER-KVA.DE", "ann@xn--bcher-kva.de"),
    ("jose\u0301@example.com", "josé@example.com"),  # decomposed é, composed (NFKC)
    ("ann@[192.0.2.1]", "ann@[192.0.2.1]"),
    ("ann@[IPv6:2001:DB8:0:0::1]", "ann@[ipv6:2001:db8::1]"),
]

# Sub-addresses: other mailboxes of the same person (the rule "never your own request").
ONE_PERSON = [
    ("ann+trip@example.com", "ann@example.com"),
    ("Ann+Trip+2@Example.com", "ann@example.com"),
    ('"ann+trip"@ｅxample.com', "ann@example.com"),
    ("ann+@example.com", "ann@example.com"),
]

DISTINCT = [
    ("ann@example.com", "anne@example.com"),
    ("ann@example.com", "ann@example.org"),
    ("ann@example.com", "ann@mail.example.com"),
    ("ann.lee@example.com", "annlee@example.com"),  # dots count (only some providers drop them)
    ('"ann lee"@example.com', "annlee@example.com"),
    ("ann@straße.de", "ann@strasse.de"),  # two domains under IDNA 2008
    ("+ann@example.com", "ann@example.com"),  # nothing before the +: not a sub-address
]

NOT_ADDRESSES = [
    "",
    "ann",
    "@example.com",
    "ann@",
    "ann@@example.com",
    "ann@exa mple.com",
    "ann..lee@example.com",
    ".ann@example.com",
    '"ann@example.com',
    '"ann"lee@example.com',
    "ann lee@example.com",
    "ann@example..com",
    "ann@-example.com",
    "ann@exa_mple.com",
    "ann@xn--abc.com",  # not valid punycode
    "ann@ex\u200dample.com",  # a zero-width joiner, not allowed there
    "ann@\u0300a.com",  # a label that starts with a combining mark
    "ann@exa\uffffmple.com",
    "ann\x00@example.com",
    "\ud800ann@example.com",  # a lone surrogate
    "ann\u00ad@example.com",  # a soft hyphen in the local part: invisible, not nothing
    "ann\u200b@example.com",  # a zero-width space
    '"ann\u2028"@example.com',  # a line separator, even quoted
    "ann@" + "a" * 64 + ".com",  # a label over 63 characters
    "ann@" + ".".join(["abcdefghi"] * 26) + ".com",  # over 254 characters in all
    "ann@[999.0.0.1]",
]


@pytest.mark.parametrize(("spelling", "canonical"), ONE_MAILBOX)
def test_spellings_of_one_mailbox_have_one_canonical_form(spelling, canonical):
    assert emails.canonical(spelling) == canonical
    assert emails.person(spelling) == emails.person(canonical)


@pytest.mark.parametrize(("sub_address", "address"), ONE_PERSON)
def test_a_sub_address_is_another_mailbox_of_the_same_person(sub_address, address):
    assert emails.canonical(sub_address) != emails.canonical(address)
    assert emails.person(sub_address) == emails.person(address) == address


@pytest.mark.parametrize(("one", "other"), DISTINCT)
def test_distinct_addresses_stay_distinct(one, other):
    assert emails.canonical(one) != emails.canonical(other)
    assert emails.person(one) != emails.person(other)


@pytest.mark.parametrize("text", NOT_ADDRESSES)
def test_text_that_is_no_address_has_no_canonical_form(text):
    with pytest.raises(emails.InvalidAddress):
        emails.canonical(text)
    with pytest.raises(emails.InvalidAddress):
        emails.person(text)


@pytest.mark.parametrize(
    "spelling", [pair[0] for pair in ONE_MAILBOX + ONE_PERSON] + ['"ann lee"@example.com']
)
def test_the_canonical_form_is_its_own_canonical_form(spelling):
    canonical = emails.canonical(spelling)
    assert emails.canonical(canonical) == canonical
    assert emails.person(canonical) == emails.person(spelling)
    assert emails.person(emails.person(spelling)) == emails.person(spelling)


# --- Never your own request, whatever the spelling ----------------------------------------------

# (the requester's account e-mail, the requester_email a workflow registers)
OWN_REQUESTS = [
    ("Ann@Example.com", '"ann"@example.com'),
    ("Ann@Example.com", "ann+trip@example.com"),
    ("Ann@Example.com", "ann@ｅxample.com"),
    ("Ann@Example.com", '"Ann+Trip"@EXAMPLE.com'),
    ("Ann@Example.com", "ann@ex\u00adample.com"),
    ("ann+work@example.com", "ann@example.com"),
    ('"ann"@ｅxample.com', "ann+trip@example.com"),
]


@pytest.mark.parametrize(("account", "requester"), OWN_REQUESTS)
def test_the_requester_never_decides_their_own_request_under_another_spelling(
    client, register, make_user, receiver, account, requester
):
    created = register(requester_email=requester)
    ann = make_user("ann", email=account, is_superuser=True)

    response = decide_page(client, ann, created["id"], "approved")

    assert response.status_code == 409
    assert "cannot decide it yourself" in response.content.decode()
    assert not Decision.objects.exists() and receiver.received == []
    assert created["id"] not in waiting_ids(client, ann)
    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert ann.pk not in {decider.user.pk for decider in permissions.deciders(approval)}
    assert permissions.can_see(ann, approval)  # it is hers to see


@pytest.mark.parametrize(("account", "requester"), OWN_REQUESTS)
def test_a_delegate_never_decides_their_own_request_under_another_spelling(
    client, register, make_user, account, requester
):
    boss = make_user("boss")
    ann = make_user("ann", email=account)
    services.delegate(boss, ann, ends_at=_tomorrow())
    created = register(requester_email=requester, assignees=["boss@example.com"])

    with pytest.raises(services.DecisionRefused):
        services.decide(created["id"], ann, "approved", "")
    assert created["id"] not in waiting_ids(client, ann)
    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert [decider.user.pk for decider in permissions.deciders(approval)] == [boss.pk]


def test_a_delegator_whose_request_it_is_lets_no_delegate_decide_it(client, register, make_user):
    ann = make_user("ann", email="Ann@Example.com")
    carl = make_user("carl")
    services.delegate(ann, carl, ends_at=_tomorrow())
    created = register(requester_email='"ann+trip"@ｅxample.com', assignees=["ann@example.com"])

    with pytest.raises(services.DecisionRefused):
        services.decide(created["id"], carl, "approved", "")
    assert created["id"] not in waiting_ids(client, carl)


# --- Assignees and escalation targets under another spelling -------------------------------------


@pytest.mark.parametrize(
    "named",
    ['"Boss"@Example.com', "boss@ｅxample.com", "BOSS@EXAMPLE.COM", "boss@ex\u00adample.com"],
)
def test_an_assignee_named_under_another_spelling_of_their_mailbox_decides(
    client, register, make_user, named
):
    boss = make_user("boss", email="Boss@Example.com")
    other = make_user("other")
    created = register(assignees=[named])
    approval = ApprovalRequest.objects.get(pk=created["id"])

    assert [decider.user.pk for decider in permissions.deciders(approval)] == [boss.pk]
    assert waiting_ids(client, boss) == [created["id"]]
    assert waiting_ids(client, other) == []
    assert decide_page(client, boss, created["id"], "approved").status_code == 302


def test_an_account_with_an_unusual_spelling_is_found_as_the_assignee(client, register, make_user):
    boss = make_user("boss", email='"Boss"@ｅxample.com')
    created = register(assignees=["boss@example.com"])
    approval = ApprovalRequest.objects.get(pk=created["id"])

    assert [decider.user.pk for decider in permissions.deciders(approval)] == [boss.pk]
    assert waiting_ids(client, boss) == [created["id"]]
    services.decide(created["id"], boss, "approved", "")
    assert Decision.objects.get().decided_by == "boss@example.com"


def test_a_sub_address_names_another_mailbox_not_its_owner(client, register, make_user):
    """Assignees are compared mailbox to mailbox: naming `boss+travel@` names that mailbox's
    account, not `boss@`'s (only the requester rule ignores sub-addresses)."""
    boss = make_user("boss")
    travel = make_user("travel", email="Boss+Travel@example.com")
    created = register(assignees=["boss+travel@example.com"])
    approval = ApprovalRequest.objects.get(pk=created["id"])

    assert [decider.user.pk for decider in permissions.deciders(approval)] == [travel.pk]
    with pytest.raises(services.DecisionRefused, match="assigned to other people"):
        services.decide(created["id"], boss, "approved", "")


def test_two_spellings_of_one_assignee_are_one_assignee(register):
    created = register(assignees=["boss@example.com", '"Boss"@ｅxample.com', "BOSS@example.com"])
    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert [assignee.email for assignee in approval.assignees.all()] == ["boss@example.com"]


def test_an_escalation_target_named_under_another_spelling_decides_after_escalation(
    client, register, make_user
):
    make_user("anna")
    boss = make_user("boss")
    created = register(
        assignees=["anna@example.com"],
        escalate_to=['"BOSS"@ｅxample.com'],
        escalate_after_seconds=60,
    )
    assert created["id"] not in waiting_ids(client, boss)
    ApprovalRequest.objects.filter(pk=created["id"]).update(escalates_at=_now())
    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert boss.pk in {d.user.pk for d in permissions.deciders(approval, role="escalation")}
    assert created["id"] in waiting_ids(client, boss)


def test_one_person_under_two_spellings_gives_one_approval_of_two(register, make_user):
    """ "Had their say" compares mailboxes too: a second account of the same mailbox does not
    bring the second approval."""
    ann = make_user("ann", email="ann@example.com")
    twin = make_user("twin", email='"Ann"@ｅxample.com')
    make_user("ben")
    created = register(required_approvals=2)

    services.decide(created["id"], ann, "approved", "")
    with pytest.raises(services.DecisionRefused, match="already approved"):
        services.decide(created["id"], twin, "approved", "")


def test_the_requester_under_another_spelling_is_not_counted_among_possible_deciders(
    client, registration_body, make_user
):
    make_user("ann")
    make_user("ben")
    response = client.post(
        "/api/approvals",
        registration_body(requester_email='"Ann+Trip"@ｅxample.com', required_approvals=2),
        content_type="application/json",
        headers={"Authorization": "Bearer test-static-api-token"},
    )
    assert response.status_code == 400
    assert "Only 1 approver(s) could decide" in response.json()["fields"]["required_approvals"][0]


# --- Refused at registration; found by the inbox filter -----------------------------------------


@pytest.mark.parametrize(
    "address",
    ["ann@xn--abc.com", "ann@ex\u200dample.com", "ann@\u0300a.com", "ann@exa\uffffmple.com"],
)
@pytest.mark.parametrize("field", ["requester_email", "assignees", "escalate_to"])
def test_an_address_without_a_canonical_form_is_refused_at_registration(
    client, registration_body, field, address
):
    value = {"requester_email": address, "assignees": [address], "escalate_to": [address]}[field]
    extra = {"escalate_after_seconds": 600} if field == "escalate_to" else {}
    response = client.post(
        "/api/approvals",
        registration_body(**{field: value}, **extra),
        content_type="application/json",
        headers={"Authorization": "Bearer test-static-api-token"},
    )
    assert response.status_code == 400
    assert list(response.json()["fields"]) == [field]
    assert not ApprovalRequest.objects.exists()


def test_the_inbox_requester_filter_finds_every_spelling_of_the_person(client, register, make_user):
    manager = make_user("manager")
    mine = [register(requester_email=s)["id"] for s in ("ann@example.com", '"ann+x"@ｅxample.com')]
    register(requester_email="anne@example.com")
    client.force_login(manager)

    response = client.get("/", {"tab": "pending", "requester": "Ann@Example.com"})

    assert response.status_code == 200
    assert sorted(str(row.pk) for row in response.context["page"].rows) == sorted(mine)


def test_a_delegate_is_found_by_any_spelling_of_their_e_mail(client, make_user):
    ann = make_user("ann")
    bob = make_user("bob", email="Bob@Example.com")
    client.force_login(ann)
    ends_at = timezone.localtime(_tomorrow()).strftime("%Y-%m-%dT%H:%M")

    response = client.post(
        "/delegations/", {"delegate": '"bob"@ｅxample.com', "starts_at": "", "ends_at": ends_at}
    )

    assert response.status_code == 302
    assert Delegation.objects.get().delegate == bob


def _now():
    return timezone.now()


def _tomorrow():
    return _now() + datetime.timedelta(days=1)


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_every_stored_request_and_assignee_its_canonical_form():
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = ("approvals", "0012_remove_sign_in_throttle")
    call_command("migrate", *before, verbosity=0)
    old = MigrationExecutor(connection).loader.project_state(before).apps
    now = _now()
    stored = {}
    for n, requester in enumerate(['"ann+trip"@ｅxample.com', "ann@xn--abc.com"]):
        approval = old.get_model("approvals", "ApprovalRequest").objects.create(
            callback_url=f"https://workflowexecutions.googleapis.com/v1/x/callbacks/{n}",
            title="Before",
            requester_email=requester,
            registered_by="api-token",
            expires_at=now + datetime.timedelta(days=1),
        )
        assignees = old.get_model("approvals", "Assignee").objects
        assignees.create(request=approval, email='"boss"@ｅxample.com')
        assignees.create(request=approval, group="finance")
        stored[requester] = approval.pk
    call_command("migrate", "approvals", verbosity=0)

    fine, legacy = (ApprovalRequest.objects.get(pk=stored[r]) for r in stored)
    assert fine.requester_key == "ann@example.com"
    assert legacy.requester_key == "ann@xn--abc.com"  # had no canonical form: kept as stored
    assert sorted(fine.assignees.values_list("email_key", "group")) == [
        ("", "finance"),
        ("boss@example.com", ""),
    ]
