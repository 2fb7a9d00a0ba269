"""Out of office: a delegate decides for someone during a period, and every record names both.

Through the pages (naming, listing and ending a delegation; deciding as a delegate), the API and
the callback the workflow receives. The rules themselves live in `approvals.permissions`.
"""

import datetime
import logging
import zoneinfo

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from approvals import permissions, services
from approvals.models import (
    ApprovalRequest,
    AuditEvent,
    Decision,
    Delegation,
    Status,
    active_delegation_q,
)
from approvals.tests.conftest import API_TOKEN, decide_page, waiting_ids

# Real transactions: callbacks are sent after the decision commits (transaction.on_commit).
pytestmark = pytest.mark.django_db(transaction=True)

DAY = datetime.timedelta(days=1)
HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def alice_a(make_user):
    """The delegator: an approver, named as the assignee of the requests below."""
    return make_user("a")


@pytest.fixture
def bob_b(make_user):
    """The delegate: an approver whom the requests below do not name."""
    return make_user("b")


def local_input(moment: datetime.datetime) -> str:
    """`moment` as a datetime-local input sends it: wall time in the current time zone."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def name_delegate(client, user, delegate="b@example.com", **fields):
    """POST the out-of-office form as `user`: from now until a day from now unless told."""
    client.force_login(user)
    data = {
        "delegate": delegate,
        "starts_at": "",
        "ends_at": local_input(timezone.now() + DAY),
        "note": "",
        **fields,
    }
    return client.post("/delegations/", data)


def fresh(user):
    """The user read again, without cached permissions, groups or delegations."""
    return type(user).objects.get(pk=user.pk)


def delegation_between(delegator, delegate, starts_at=None, ends_at=None, **fields):
    """A delegation stored as is (no rules checked): for periods the form cannot make."""
    now = timezone.now()
    return Delegation.objects.create(
        delegator=delegator,
        delegate=delegate,
        starts_at=starts_at or now,
        ends_at=ends_at or now + DAY,
        **fields,
    )


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- Deciding as a delegate ----------------------------------------------------------------------


def test_a_delegate_decides_for_the_delegator_and_every_record_names_both(
    client, register, alice_a, bob_b, receiver
):
    created = register(assignees=["a@example.com"])
    assert waiting_ids(client, bob_b) == []

    response = name_delegate(client, alice_a, delegate="B@Example.com", note="Back on Monday")
    assert response.status_code == 302 and response["Location"] == "/delegations/"

    assert waiting_ids(client, bob_b) == [created["id"]]
    page = client.get(f"/approvals/{created['id']}/").content.decode()
    assert "You decide on behalf of a@example.com" in page
    assert "b@example.com (for a@example.com)" in page  # "Who can decide"

    response = decide_page(client, bob_b, created["id"], comment="Fine, for Alice")
    assert response.status_code == 302
    followed = client.get(response["Location"])
    assert any("on behalf of a@example.com" in text for text in messages_of(followed))

    request = ApprovalRequest.objects.get(pk=created["id"])
    assert request.status == Status.APPROVED
    decision = request.decisions.get()
    assert (decision.decided_by, decision.on_behalf_of, decision.user) == (
        "b@example.com",
        "a@example.com",
        bob_b,
    )
    event = request.audit_events.get(kind=AuditEvent.Kind.APPROVED)
    assert event.actor == "b@example.com"
    assert event.payload["on_behalf_of"] == "a@example.com"
    assert event.payload["comment"] == "Fine, for Alice"

    assert len(receiver.received) == 1
    body = receiver.received[0].body
    assert (body["decision"], body["decided_by"], body["on_behalf_of"]) == (
        "approved",
        "b@example.com",
        "a@example.com",
    )
    assert body["comment"] == "Fine, for Alice"
    assert [(d["decided_by"], d["on_behalf_of"], d["decision"]) for d in body["decisions"]] == [
        ("b@example.com", "a@example.com", "approved")
    ]

    answer = client.get(
        f"/api/approvals/{created['id']}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    ).json()
    assert answer["decided_by"] == "b@example.com"
    assert answer["on_behalf_of"] == "a@example.com"
    assert answer["decisions"][0]["on_behalf_of"] == "a@example.com"

    for reader in (bob_b, alice_a):
        client.force_login(reader)
        page = client.get(f"/approvals/{created['id']}/").content.decode()
        assert "by b@example.com on behalf of a@example.com" in page  # the decision
        assert "by b@example.com on behalf of a@example.com:" in page  # the history
    assert waiting_ids(client, alice_a) == []


def test_the_delegate_is_refused_before_the_delegation_begins(
    client, register, alice_a, bob_b, receiver
):
    created = register(assignees=["a@example.com"])
    response = name_delegate(
        client,
        alice_a,
        starts_at=local_input(timezone.now() + HOUR),
        ends_at=local_input(timezone.now() + DAY),
    )
    assert response.status_code == 302

    assert waiting_ids(client, bob_b) == []
    assert decide_page(client, bob_b, created["id"]).status_code == 404  # not theirs to see yet
    with pytest.raises(services.DecisionRefused, match="assigned to other people"):
        services.decide(created["id"], fresh(bob_b), "approved", "")
    assert not Decision.objects.exists() and receiver.received == []


def test_the_delegate_is_refused_after_the_delegation_ends(client, register, alice_a, bob_b):
    created = register(assignees=["a@example.com"])
    now = timezone.now()
    delegation_between(alice_a, bob_b, starts_at=now - 2 * DAY, ends_at=now - DAY)

    assert waiting_ids(client, bob_b) == []
    assert decide_page(client, bob_b, created["id"]).status_code == 404
    with pytest.raises(services.DecisionRefused, match="assigned to other people"):
        services.decide(created["id"], fresh(bob_b), "approved", "")
    assert not Decision.objects.exists()


def test_the_delegate_is_refused_once_the_delegator_ends_it_early(client, register, alice_a, bob_b):
    created = register(assignees=["a@example.com"])
    name_delegate(client, alice_a)
    delegation = Delegation.objects.get()
    assert waiting_ids(client, bob_b) == [created["id"]]

    client.force_login(alice_a)
    response = client.post(f"/delegations/{delegation.pk}/end")
    assert response.status_code == 302 and response["Location"] == "/delegations/"

    assert waiting_ids(client, bob_b) == []
    assert decide_page(client, bob_b, created["id"]).status_code == 404
    with pytest.raises(services.DecisionRefused, match="assigned to other people"):
        services.decide(created["id"], fresh(bob_b), "approved", "")
    assert not Decision.objects.exists()


def test_delegations_do_not_chain(client, register, alice_a, bob_b, make_user):
    carol_c = make_user("c")
    for_alice = register(assignees=["a@example.com"])
    for_bob = register(assignees=["b@example.com"])
    name_delegate(client, alice_a, delegate="b@example.com")
    name_delegate(client, bob_b, delegate="c@example.com")

    # Carol stands in for Bob, on what Bob is named for; not on what Bob may do for Alice.
    assert waiting_ids(client, carol_c) == [for_bob["id"]]
    assert decide_page(client, carol_c, for_alice["id"]).status_code == 404
    with pytest.raises(services.DecisionRefused, match="assigned to other people"):
        services.decide(for_alice["id"], fresh(carol_c), "approved", "")
    assert not Decision.objects.filter(request_id=for_alice["id"]).exists()

    decision = services.decide(for_bob["id"], fresh(carol_c), "approved", "").decision
    assert (decision.decided_by, decision.on_behalf_of) == ("c@example.com", "b@example.com")


def test_a_delegate_never_decides_a_request_they_asked_for(
    client, register, alice_a, bob_b, receiver
):
    created = register(assignees=["a@example.com"], requester_email="b@example.com")
    name_delegate(client, alice_a)

    assert waiting_ids(client, bob_b) == []
    response = decide_page(client, bob_b, created["id"])
    assert response.status_code == 409  # the requester sees their request, and cannot decide it
    assert "cannot decide it yourself" in response.content.decode()
    capacity = permissions.decider_capacity(
        fresh(bob_b), ApprovalRequest.objects.get(pk=created["id"])
    )
    assert capacity.refusal.startswith("You asked for this approval")
    assert capacity.on_behalf_of == ""
    assert not Decision.objects.exists() and receiver.received == []
    # The delegator still decides it themselves.
    assert decide_page(client, alice_a, created["id"]).status_code == 302


def test_who_approved_for_themselves_cannot_approve_again_for_their_delegator(
    client, register, alice_a, bob_b, make_user, receiver
):
    make_user("c")
    created = register(
        assignees=["a@example.com", "b@example.com", "c@example.com"], required_approvals=2
    )
    name_delegate(client, alice_a)
    assert decide_page(client, bob_b, created["id"], comment="Mine").status_code == 302
    assert Decision.objects.get().on_behalf_of == ""  # named themselves: they decide as themselves

    response = decide_page(client, bob_b, created["id"], comment="And for Alice")

    assert response.status_code == 409
    assert "You already approved this request." in response.content.decode()
    assert Decision.objects.count() == 1 and receiver.received == []
    assert waiting_ids(client, bob_b) == []
    assert ApprovalRequest.objects.get(pk=created["id"]).status == Status.PENDING


def test_the_delegator_cannot_approve_after_their_delegate_approved_for_them(
    client, register, alice_a, bob_b, make_user, receiver
):
    carol_c = make_user("c")
    created = register(assignees=["a@example.com", "c@example.com"], required_approvals=2)
    name_delegate(client, alice_a)
    assert decide_page(client, bob_b, created["id"], comment="For Alice").status_code == 302

    response = decide_page(client, alice_a, created["id"], comment="Me too")

    assert response.status_code == 409
    assert "b@example.com already approved this request on your behalf." in (
        response.content.decode()
    )
    assert waiting_ids(client, alice_a) == []
    assert Decision.objects.count() == 1 and receiver.received == []

    assert decide_page(client, carol_c, created["id"], comment="Agreed").status_code == 302
    body = receiver.received[0].body
    assert (body["decided_by"], body["on_behalf_of"]) == ("c@example.com", None)
    assert [(d["decided_by"], d["on_behalf_of"]) for d in body["decisions"]] == [
        ("b@example.com", "a@example.com"),
        ("c@example.com", None),
    ]


def test_a_delegation_of_someone_who_lost_the_permission_lets_nobody_decide_for_them(
    client, register, alice_a, bob_b, approvers_group
):
    created = register(assignees=["a@example.com"])
    name_delegate(client, alice_a, note="Holiday")
    assert waiting_ids(client, bob_b) == [created["id"]]

    alice_a.groups.remove(approvers_group)

    assert waiting_ids(client, bob_b) == []
    assert decide_page(client, bob_b, created["id"]).status_code == 404
    assert not Decision.objects.exists()
    page = client.get("/delegations/").content.decode()
    assert "a@example.com may no longer decide requests, so you cannot decide for them." in page


def test_someone_without_the_decide_permission_cannot_be_chosen(client, alice_a, make_user):
    make_user("clerk", approver=False)

    response = name_delegate(client, alice_a, delegate="clerk@example.com")

    assert response.status_code == 400
    assert "clerk@example.com may not decide approval requests" in response.content.decode()
    assert not Delegation.objects.exists()
    clerk = fresh(type(alice_a).objects.get(username="clerk"))
    with pytest.raises(services.DelegationRefused, match="may not decide approval requests"):
        services.delegate(alice_a, clerk, ends_at=timezone.now() + DAY)


# --- The out-of-office page ----------------------------------------------------------------------


def test_an_approver_names_a_delegate_and_both_see_it(client, alice_a, bob_b, caplog):
    client.force_login(alice_a)
    page = client.get("/delegations/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/delegations/"' in html  # the "Out of office" link
    assert 'type="datetime-local"' in html
    assert "Nobody stands in for you now" in html

    with caplog.at_level(logging.INFO, logger="approvals.services"):
        response = name_delegate(client, alice_a, note="Back on Monday")
    assert response.status_code == 302

    delegation = Delegation.objects.get()
    assert (delegation.delegator, delegation.delegate, delegation.note) == (
        alice_a,
        bob_b,
        "Back on Monday",
    )
    assert delegation.is_active and delegation.ended_early_at is None
    logged = next(r for r in caplog.records if r.getMessage().startswith("a@example.com deleg"))
    assert logged.json_fields["delegate"] == "b@example.com"
    assert logged.json_fields["delegation_id"] == delegation.pk

    followed = client.get("/delegations/")
    [news] = messages_of(followed)
    assert news.startswith("b@example.com stands in for you until")
    html = followed.content.decode()
    assert "In force" in html and "b@example.com" in html and "Back on Monday" in html
    assert f'action="/delegations/{delegation.pk}/end"' in html

    client.force_login(bob_b)
    html = client.get("/delegations/").content.decode()
    assert "You stand in for" in html and "a@example.com" in html and "Back on Monday" in html
    assert f'action="/delegations/{delegation.pk}/end"' not in html  # only its author ends it


def test_the_delegate_is_told_by_e_mail_for_whom_and_when(client, alice_a, bob_b, mailoutbox):
    name_delegate(client, alice_a, note="Back on Monday")

    [message] = mailoutbox
    assert message.to == ["b@example.com"]
    assert message.subject == "a@example.com named you their delegate"
    delegation = Delegation.objects.get()
    assert timezone.localtime(delegation.ends_at).strftime("%-d %b %Y, %H:%M") in message.body
    assert "Their note: Back on Monday" in message.body
    assert "http://testserver/delegations/" in message.body


def test_a_failing_mail_server_does_not_stop_a_delegation(client, alice_a, bob_b, settings, caplog):
    settings.EMAIL_BACKEND = "approvals.tests.test_notifications.RefusingBackend"

    response = name_delegate(client, alice_a)

    assert response.status_code == 302
    assert Delegation.objects.filter(delegator=alice_a, delegate=bob_b).exists()
    assert "Could not send the delegation notice of delegation" in caplog.text


def test_the_page_lists_upcoming_and_past_delegations_newest_first(
    client, alice_a, bob_b, make_user
):
    now = timezone.now()
    carol_c = make_user("c")
    name_delegate(
        client,
        alice_a,
        delegate="c@example.com",
        starts_at=local_input(now + 2 * DAY),
        ends_at=local_input(now + 3 * DAY),
    )
    for days_ago in range(1, 26):
        delegation_between(
            alice_a,
            bob_b,
            starts_at=now - (days_ago + 1) * DAY,
            ends_at=now - days_ago * DAY,
            note=f"Trip {days_ago}",
        )

    client.force_login(alice_a)
    response = client.get("/delegations/")

    assert [d.delegate for d in response.context["upcoming"]] == [carol_c]
    assert response.context["current"] == []
    past = response.context["past"]
    assert [d.note for d in past] == [f"Trip {n}" for n in range(1, 21)]  # latest 20 only
    html = response.content.decode()
    assert "Upcoming" in html and "Over" in html and "The latest 20 are shown." in html
    assert html.index("Trip 1<") < html.index("Trip 2<")
    assert "Trip 21" not in html

    client.force_login(carol_c)
    held = client.get("/delegations/").context["held"]
    assert [d.delegator for d in held] == [alice_a]


def test_ending_a_delegation_in_force_keeps_it_on_record(client, alice_a, bob_b):
    name_delegate(client, alice_a)
    delegation = Delegation.objects.get()
    before = timezone.now()

    response = client.post(f"/delegations/{delegation.pk}/end", follow=True)

    assert response.status_code == 200
    assert "b@example.com no longer stands in for you." in messages_of(response)
    delegation.refresh_from_db()
    assert before <= delegation.ends_at <= timezone.now()
    assert delegation.ended_early_at == delegation.ends_at
    assert not delegation.is_active and not services.was_withdrawn(delegation)
    assert [d.pk for d in response.context["past"]] == [delegation.pk]
    assert "Ended early" in response.content.decode()

    again = client.post(f"/delegations/{delegation.pk}/end", follow=True)
    assert "That delegation had already ended." in messages_of(again)
    ended_at = delegation.ends_at
    delegation.refresh_from_db()
    assert delegation.ends_at == ended_at


def test_withdrawing_an_upcoming_delegation_leaves_an_empty_window(
    client, alice_a, bob_b, register
):
    created = register(assignees=["a@example.com"])
    planned_start = timezone.now() + DAY
    name_delegate(
        client,
        alice_a,
        starts_at=local_input(planned_start),
        ends_at=local_input(planned_start + DAY),
    )
    delegation = Delegation.objects.get()
    before = timezone.now()

    response = client.post(f"/delegations/{delegation.pk}/end", follow=True)

    assert "b@example.com no longer stands in for you." in messages_of(response)
    delegation.refresh_from_db()
    assert before <= delegation.ended_early_at <= timezone.now()
    # The planned start is kept; the window is empty.
    assert abs(delegation.starts_at - planned_start) < datetime.timedelta(minutes=1)
    assert delegation.ends_at == delegation.starts_at
    assert services.was_withdrawn(delegation)
    # Never in force again: not now, not when it was planned to begin.
    for moment in (timezone.now(), planned_start, planned_start + HOUR):
        assert not Delegation.objects.filter(active_delegation_q(moment)).exists()
    assert "withdrawn before it began" in response.content.decode()
    assert response.context["upcoming"] == [] and response.context["current"] == []
    assert waiting_ids(client, bob_b) == []
    assert created["id"] in waiting_ids(client, alice_a)


def test_another_persons_delegation_cannot_be_ended(client, alice_a, bob_b, make_user):
    name_delegate(client, alice_a)
    delegation = Delegation.objects.get()

    for someone in (bob_b, make_user("c")):  # the delegate too: it is the delegator's to end
        client.force_login(someone)
        assert client.post(f"/delegations/{delegation.pk}/end").status_code == 404
    client.force_login(alice_a)
    assert client.post("/delegations/999999/end").status_code == 404
    assert client.post("/delegations/99999999999999999999999/end").status_code == 404
    assert client.get(f"/delegations/{delegation.pk}/end").status_code == 405
    delegation.refresh_from_db()
    assert delegation.is_active and delegation.ended_early_at is None


def test_people_without_the_decide_permission_get_403(client, make_user):
    clerk = make_user("clerk", approver=False)
    client.force_login(clerk)

    assert client.get("/delegations/").status_code == 403
    response = client.post(
        "/delegations/",
        {"delegate": "b@example.com", "ends_at": local_input(timezone.now() + DAY)},
    )
    assert response.status_code == 403
    assert "Not allowed" in response.content.decode()
    assert 'href="/delegations/"' not in client.get("/").content.decode()
    assert not Delegation.objects.exists()


def test_the_page_needs_a_signed_in_person(client):
    assert client.get("/delegations/")["Location"].startswith("/accounts/login/")
    assert client.post("/delegations/1/end")["Location"].startswith("/accounts/login/")


def test_a_directly_granted_permission_is_enough_to_delegate(client, make_user, bob_b):
    direct = make_user("direct", approver=False)
    direct.user_permissions.add(Permission.objects.get(codename="decide_approvalrequest"))
    assert name_delegate(client, direct).status_code == 302
    assert Delegation.objects.get().delegator == direct


def now_plus(delta) -> str:
    return local_input(timezone.now() + delta)


BAD_INPUTS = {
    "nothing": (
        {"delegate": "", "ends_at": ""},
        ["Give the e-mail of the person who stands in for you.", "Say when the delegation ends."],
    ),
    "malformed e-mail": ({"delegate": "not-an-e-mail"}, ["Enter a valid email address."]),
    "unknown e-mail": (
        {"delegate": "nobody@example.com"},
        ["Nobody with an active account uses this e-mail address."],
    ),
    "inactive account": (
        {"delegate": "gone@example.com"},
        ["Nobody with an active account uses this e-mail address."],
    ),
    "yourself": ({"delegate": "A@example.com"}, ["You cannot name yourself as your delegate."]),
    "not an approver": (
        {"delegate": "clerk@example.com"},
        ["clerk@example.com may not decide approval requests"],
    ),
    "shared e-mail": (
        {"delegate": "twin@example.com"},
        ["Several accounts use this e-mail address"],
    ),
    "malformed end": ({"ends_at": "next tuesday"}, ["Enter a date and time"]),
    "impossible end": ({"ends_at": "2030-13-45T99:99"}, ["Enter a date and time"]),
    "five-digit year": ({"ends_at": "10000-01-01T00:00"}, ["Enter a date and time"]),
    "malformed start": ({"starts_at": "soon"}, ["Enter a date and time"]),
    "end in the past": ({"ends_at": "2001-01-01T00:00"}, ["The end must be in the future."]),
    "end before start": (
        {"starts_at": "+2d", "ends_at": "+1d"},
        ["The end must come after the start."],
    ),
    "far future": ({"ends_at": "+400d"}, ["A delegation must end within a year from now."]),
    "long note": ({"note": "x" * 201}, ["at most 200 characters"]),
    "null character": ({"note": "away\x00"}, ["Null characters are not allowed."]),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_every_bad_input_is_a_400_with_a_message(client, alice_a, bob_b, make_user, case):
    make_user("clerk", approver=False)
    make_user("gone", is_active=False)
    make_user("twin1", email="twin@example.com")
    make_user("twin2", email="Twin@Example.com")
    fields, expected = BAD_INPUTS[case]
    fields = {
        name: now_plus(int(value[1:-1]) * DAY) if value.startswith("+") else value
        for name, value in fields.items()
    }

    response = name_delegate(client, alice_a, **fields)

    assert response.status_code == 400
    html = response.content.decode()
    for message in expected:
        assert message.replace("'", "&#x27;") in html, message
    assert "Nothing was saved: see below." in messages_of(response)
    assert 'aria-invalid="true"' in html
    assert not Delegation.objects.exists()


def test_a_start_in_the_past_means_now(client, alice_a, bob_b):
    before = timezone.now()
    name_delegate(client, alice_a, starts_at=now_plus(-3 * DAY))
    delegation = Delegation.objects.get()
    assert before <= delegation.starts_at <= timezone.now()


def test_times_are_read_in_the_projects_time_zone(client, settings, alice_a, bob_b):
    settings.TIME_ZONE = "Europe/Berlin"
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    wall = (
        (timezone.now() + 2 * DAY)
        .astimezone(berlin)
        .replace(hour=9, minute=30, second=0, microsecond=0, tzinfo=None)
    )

    client.force_login(alice_a)
    assert "(Europe/Berlin)" in client.get("/delegations/").content.decode()
    response = name_delegate(
        client,
        alice_a,
        starts_at=wall.strftime("%Y-%m-%dT%H:%M"),
        ends_at=(wall + HOUR).strftime("%Y-%m-%dT%H:%M"),
    )
    assert response.status_code == 302

    delegation = Delegation.objects.get()
    assert delegation.starts_at == wall.replace(tzinfo=berlin)
    assert delegation.ends_at - delegation.starts_at == HOUR
    assert delegation.starts_at.astimezone(datetime.UTC).hour != 9  # Berlin is never UTC
    html = client.get("/delegations/").content.decode()
    assert wall.strftime("%H:%M") in html
    assert "CET" in html or "CEST" in html


def test_the_out_of_office_link_shows_only_to_those_who_may_name_a_delegate(client, make_user):
    approver, without_email = make_user("ann"), make_user("nomail", email="")
    plain = make_user("pat", approver=False)

    shown = {}
    for person in (approver, without_email, plain):
        client.force_login(person)
        shown[person.username] = (
            'href="/delegations/"' in client.get("/").content.decode(),
            client.get("/delegations/").status_code,
        )

    assert shown == {"ann": (True, 200), "nomail": (False, 403), "pat": (False, 403)}
