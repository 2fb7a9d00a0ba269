"""Google Chat end to end: the app's endpoint answers Chat's events (signed as Chat signs them),
the channel posts and updates cards through the Chat stand-in, as the app, with google-auth's
real `AuthorizedSession` over the metadata stand-in."""

# The Chat stand-in's fixtures are imported from its own tests; pytest passes them by name.
# ruff: noqa: F811

import datetime
import io
import json
from dataclasses import replace

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from approvals import emails, inputs, permissions, services
from approvals.management.commands import send_notifications as send_notifications_command
from approvals.models import ApprovalRequest, AuditEvent, ChatAccount, Decision, Notice
from approvals.notify import chat as said
from approvals.notify.channels.google_chat import card_message
from approvals.tests.conftest import decide_page
from approvals.tests.test_standins_chat import (  # noqa: F401 - the Chat stand-in's fixtures
    EVENTS_URL,
    PROJECT_NUMBER,
    chat,
    chat_certs,
    chat_key,
    chat_tokens,
)
from standins import google_chat
from standins.google import SigningKey
from standins.google_chat_demo import DemoPage, respond
from standins.http import free_port

pytestmark = pytest.mark.django_db

PATH = "/integrations/google-chat/events"
COST_CENTRE = {
    "name": "cost_centre",
    "label": "Cost centre",
    "type": "choice",
    "choices": ["R&D", "Sales"],
    "required": True,
}


@pytest.fixture
def chat_app(settings, chat, chat_certs):
    """Google Chat turned on, the endpoint-URL audience, the API at the stand-in."""
    settings.APPROVALS_GOOGLE_CHAT_AUDIENCE = EVENTS_URL
    settings.APPROVALS_GOOGLE_CHAT_CERTS_URL = chat_certs.url
    settings.APPROVALS_GOOGLE_CHAT_API_URL = chat.api_url
    return chat


def post(client, event, token: str):
    """Post `event` to the app as Chat does, with `token` as the bearer."""
    sent = google_chat.event_request(event, token)
    headers = {k: v for k, v in sent.headers.items() if k != "Content-Type"}
    return client.post(PATH, sent.body, content_type=sent.content_type, headers=headers)


@pytest.fixture
def send_event(client, chat_app, chat_tokens):
    """Post an event with a valid token for the endpoint URL; the app's JSON answer."""

    def send(event: dict, status: int = 200):
        answered = post(client, event, chat_tokens.for_endpoint_url(EVENTS_URL))
        assert answered.status_code == status, answered.content
        return answered.json()

    return send


@pytest.fixture
def add_app(chat_app, send_event):
    """The person added the app in a direct message: their space, as Chat knows it."""

    def add(email: str):
        space = chat_app.install_for(email)
        send_event(google_chat.added_to_space(space))
        return space

    return add


def send_notifications():
    """One pass of `manage.py send_notifications` (without the command's connection handling,
    which a test's transaction cannot have closed under it)."""
    send_notifications_command.Command(stdout=io.StringIO()).one_pass()


def card_of(server, space) -> google_chat.ChatMessage:
    [message] = [m for m in server.messages_in(space) if m.cards_v2]
    return message


def card_text(message: google_chat.ChatMessage) -> str:
    return json.dumps(message.cards_v2)


def buttons(message: google_chat.ChatMessage) -> list[str]:
    return [b["text"] for b in google_chat._buttons(message.fields) if "action" in b["onClick"]]


def open_dialog(send_event, message, label: str) -> dict:
    dialog = send_event(google_chat.card_clicked(message, label))
    assert dialog["actionResponse"]["type"] == "DIALOG", dialog
    return dialog


# The whole loop


@pytest.mark.django_db(transaction=True)
def test_a_decider_who_added_the_app_approves_from_the_card_and_the_workflow_hears_it(
    make_user, register, add_app, send_event, chat_app, receiver
):
    make_user("anna")
    make_user("ben")
    anna_dm, ben_dm = add_app("anna@example.com"), add_app("ben@example.com")
    assert ChatAccount.objects.filter(email_key="anna@example.com").get().conversation == (
        anna_dm.name
    )
    created = register(assignees=["anna@example.com", "ben@example.com"])
    send_notifications()
    card = card_of(chat_app, anna_dm)
    assert buttons(card) == ["Approve", "Reject"]
    assert "Team offsite" in card_text(card)

    answer = send_event(google_chat.card_clicked(card, "Approve"))

    assert answer["actionResponse"]["type"] == "UPDATE_MESSAGE"
    assert "Approved by anna@example.com" in json.dumps(answer["cardsV2"])
    assert google_chat.message_problems(answer) == []
    event = AuditEvent.objects.get(request_id=created["id"], kind="approved")
    assert event.payload["via"] == {"channel": "google_chat", "user": anna_dm.user.name}
    [callback] = receiver.received
    assert callback.body["decision"] == "approved"
    send_notifications()  # the next pass updates the other decider's card
    bens = card_of(chat_app, ben_dm)
    assert buttons(bens) == []
    assert "Approved by anna@example.com" in card_text(bens)


def test_reject_opens_a_dialog_whose_comment_is_required_and_then_decides(
    make_user, register, add_app, send_event, chat_app
):
    make_user("anna")
    space = add_app("anna@example.com")
    created = register(assignees=["anna@example.com"])
    send_notifications()
    card = card_of(chat_app, space)
    dialog = open_dialog(send_event, card, "Reject")
    body = dialog["actionResponse"]["dialogAction"]["dialog"]["body"]
    assert google_chat.card_problems(body) == []  # a dialog Chat would show
    assert "Comment" in json.dumps(dialog)

    empty = send_event(google_chat.dialog_submitted(card, dialog, "Reject", {"comment": ""}))
    assert "a comment is required" in json.dumps(empty)
    assert empty["actionResponse"]["dialogAction"]["dialog"]  # the dialog again, with the error
    done = send_event(
        google_chat.dialog_submitted(card, empty, "Reject", {"comment": "Over budget"})
    )

    assert done["actionResponse"]["dialogAction"]["actionStatus"]["statusCode"] == "OK"
    event = AuditEvent.objects.get(request_id=created["id"], kind="rejected")
    assert (event.payload["comment"], event.payload["via"]["channel"]) == (
        "Over budget",
        "google_chat",
    )
    send_notifications()
    assert "Rejected by anna@example.com: Over budget" in card_text(card)
    assert buttons(card) == []


@pytest.mark.parametrize(
    ("comment", "problem"), [("x" * 5001, "At most 5,000 characters."), ("a\x00b", "NUL")]
)
def test_a_comment_the_page_would_refuse_is_refused_in_the_dialog(
    make_user, register, add_app, send_event, chat_app, comment, problem
):
    make_user("anna")
    space = add_app("anna@example.com")
    created = register(assignees=["anna@example.com"])
    send_notifications()
    card = card_of(chat_app, space)
    dialog = open_dialog(send_event, card, "Reject")

    answer = send_event(google_chat.dialog_submitted(card, dialog, "Reject", {"comment": comment}))

    assert problem in json.dumps(answer)
    assert not AuditEvent.objects.filter(request_id=created["id"], kind="rejected").exists()


@pytest.mark.parametrize("button", ["Approve", "Reject"])
def test_closing_a_dialog_decides_nothing(
    make_user, register, add_app, send_event, chat_app, button
):
    make_user("anna")
    space = add_app("anna@example.com")
    optional = {**COST_CENTRE, "required": False, "when": ["approved", "rejected"]}
    created = register(assignees=["anna@example.com"], inputs=[optional])
    send_notifications()
    card = card_of(chat_app, space)
    open_dialog(send_event, card, button)
    closed = google_chat.card_clicked(card, button)
    closed["dialogEventType"] = "CANCEL_DIALOG"  # as Chat says of a dialog closed unsubmitted

    answer = send_event(closed)

    assert answer["actionResponse"]["dialogAction"]["actionStatus"]["statusCode"] == "OK"
    assert not Decision.objects.filter(request_id=created["id"]).exists()


def test_approve_with_inputs_asks_for_them_in_a_dialog_and_shows_what_is_wrong(
    make_user, register, add_app, send_event, chat_app
):
    make_user("anna")
    space = add_app("anna@example.com")
    created = register(assignees=["anna@example.com"], inputs=[COST_CENTRE])
    send_notifications()
    card = card_of(chat_app, space)
    dialog = open_dialog(send_event, card, "Approve")
    assert (
        google_chat.card_problems(dialog["actionResponse"]["dialogAction"]["dialog"]["body"]) == []
    )
    assert "Cost centre" in json.dumps(dialog)

    missing = send_event(google_chat.dialog_submitted(card, dialog, "Approve", {}))
    assert "This field is required." in json.dumps(missing)
    done = send_event(
        google_chat.dialog_submitted(card, missing, "Approve", {"input-cost_centre": "Sales"})
    )

    assert done["actionResponse"]["dialogAction"]["actionStatus"]["statusCode"] == "OK"
    event = AuditEvent.objects.get(request_id=created["id"], kind="approved")
    assert event.payload["inputs"] == {"cost_centre": "Sales"}


EVERY_KIND = [
    {"name": "note", "label": "Note", "type": "text"},
    {"name": "share", "label": "Share", "type": "number", "min": "0", "max": "100"},
    {"name": "pay_on", "label": "Pay on", "type": "date", "required": True},
    {"name": "checked", "label": "Receipts checked", "type": "boolean", "required": True},
]


def test_every_kind_of_input_comes_from_the_dialog_as_the_page_takes_it(
    make_user, register, add_app, send_event, chat_app
):
    make_user("anna")
    space = add_app("anna@example.com")
    created = register(assignees=["anna@example.com"], inputs=EVERY_KIND)
    send_notifications()
    card = card_of(chat_app, space)
    dialog = open_dialog(send_event, card, "Approve")
    given = {
        "input-note": "Booked",
        "input-share": "250",
        "input-pay_on": datetime.date(2027, 1, 15),
    }

    wrong = send_event(google_chat.dialog_submitted(card, dialog, "Approve", given))
    assert "Must be at most 100." in json.dumps(wrong)
    assert "Tick this box to decide." in json.dumps(wrong)
    right = {**given, "input-share": "40", "input-checked": ["true"]}
    done = send_event(google_chat.dialog_submitted(card, wrong, "Approve", right))

    assert done["actionResponse"]["dialogAction"]["actionStatus"]["statusCode"] == "OK"
    event = AuditEvent.objects.get(request_id=created["id"], kind="approved")
    assert event.payload["inputs"] == {
        "note": "Booked",
        "share": "40",
        "pay_on": "2027-01-15",
        "checked": True,
    }


def test_a_choice_chat_never_offered_is_refused_in_the_dialog(
    make_user, register, add_app, send_event, chat_app
):
    make_user("anna")
    space = add_app("anna@example.com")
    created = register(assignees=["anna@example.com"], inputs=[COST_CENTRE])
    send_notifications()
    card = card_of(chat_app, space)
    dialog = open_dialog(send_event, card, "Approve")

    answer = send_event(
        google_chat.dialog_submitted(card, dialog, "Approve", {"input-cost_centre": "Forged"})
    )

    assert "Must be one of: R&amp;D, Sales." in json.dumps(answer)
    assert not AuditEvent.objects.filter(request_id=created["id"], kind="approved").exists()


# Refusals speak, and nothing is recorded


@pytest.fixture
def carded(make_user, register, add_app, send_event, chat_app):
    """A request for anna and ben, anna's card posted; (request id, anna's card)."""
    make_user("anna")
    make_user("ben")
    space = add_app("anna@example.com")
    created = register(assignees=["anna@example.com", "ben@example.com"])
    send_notifications()
    return created["id"], card_of(chat_app, space)


def clicked_as(message, email: str, label: str = "Approve") -> dict:
    """A click on `message`'s button by whoever Chat says `email` is."""
    event = google_chat.card_clicked(message, label)
    event["user"] = {**event["user"], "email": email, "name": "users/999"}
    return event


@pytest.mark.parametrize(
    "spelling",
    ["ANNA@EXAMPLE.COM", "\uff41nna@example.com", "anna@example.com.", '"anna"@example.com'],
)
def test_another_spelling_of_the_deciders_address_decides_as_them(carded, send_event, spelling):
    request_id, card = carded

    answer = send_event(clicked_as(card, spelling))

    assert answer["actionResponse"]["type"] == "UPDATE_MESSAGE"
    [decision] = Decision.objects.filter(request_id=request_id)
    assert decision.decided_by == "anna@example.com"


@pytest.mark.parametrize("spelling", ["ALICE@example.com", "\uff41lice@example.com"])
def test_the_requester_under_another_spelling_is_refused(carded, send_event, make_user, spelling):
    request_id, card = carded
    make_user("alice")  # the requester, an approver too

    answer = send_event(clicked_as(card, spelling))

    assert "asked for" in json.dumps(answer)
    assert not Decision.objects.filter(request_id=request_id).exists()


@pytest.mark.parametrize(
    ("who", "said"),
    [
        ("alice@example.com", "asked for"),  # the requester
        ("nora@example.com", "permission"),  # not an approver
        ("zoe@example.com", "No Approver account has the e-mail address zoe@example.com"),
        ("", "shows no e-mail address"),
    ],
)
def test_whoever_may_not_decide_is_told_so_and_nothing_is_recorded(
    make_user, carded, send_event, who, said
):
    make_user("alice")
    make_user("nora", approver=False)
    request_id, card = carded

    answer = send_event(clicked_as(card, who))

    assert answer["actionResponse"]["type"] == "NEW_MESSAGE"
    assert said.casefold() in answer["text"].casefold()
    assert not AuditEvent.objects.filter(request_id=request_id, kind="approved").exists()


def test_a_second_click_is_refused_as_already_decided(carded, send_event):
    request_id, card = carded
    send_event(google_chat.card_clicked(card, "Approve"))

    again = send_event(google_chat.card_clicked(card, "Approve"))

    assert "already approved by anna@example.com" in again["text"]
    assert AuditEvent.objects.filter(request_id=request_id, kind="approved").count() == 1


def test_a_dialog_is_not_opened_for_a_request_that_closed(
    carded, client, django_user_model, send_event
):
    request_id, card = carded
    decide_page(client, django_user_model.objects.get(username="ben"), request_id, "approved")

    answer = send_event(google_chat.card_clicked(card, "Reject"))

    status = answer["actionResponse"]["dialogAction"]["actionStatus"]
    assert status["statusCode"] == "INVALID_ARGUMENT"
    assert "already approved" in status["userFacingMessage"]


def test_a_decision_on_the_page_updates_the_card_at_the_next_pass(
    carded, client, django_user_model, send_event, chat_app
):
    request_id, card = carded
    decide_page(client, django_user_model.objects.get(username="ben"), request_id, "approved")

    send_notifications()

    assert "Approved by ben@example.com" in card_text(card)
    assert buttons(card) == []


# The channel: who it reaches, and what a failing Chat API does


def texts_in(server, space) -> list[str]:
    return [m.text for m in server.messages_in(space) if m.text]


def test_the_requester_who_added_the_app_is_told_the_outcome_there(
    make_user, register, add_app, send_event, chat_app
):
    make_user("anna")
    make_user("alice")
    anna, alice = add_app("anna@example.com"), add_app("alice@example.com")
    register(assignees=["anna@example.com"])
    send_notifications()
    send_event(google_chat.card_clicked(card_of(chat_app, anna), "Approve"))

    send_notifications()

    [told] = texts_in(chat_app, alice)
    assert told.startswith("Your request Team offsite was approved.")
    assert "Approved by anna@example.com" in told


def test_a_new_delegate_who_added_the_app_is_told_there(make_user, add_app, chat_app):
    anna, carl = make_user("anna"), make_user("carl")
    space = add_app("carl@example.com")

    services.delegate(anna, carl, timezone.now() + datetime.timedelta(days=3))
    send_notifications()

    [told] = texts_in(chat_app, space)
    assert "anna@example.com named you their delegate" in told


def test_a_person_who_never_added_the_app_gets_email_only(make_user, register, chat_app):
    make_user("anna")

    created = register(assignees=["anna@example.com"])
    send_notifications()

    channels = set(
        Notice.objects.filter(request_id=created["id"]).values_list("channel", flat=True)
    )
    assert channels == {"email"}
    assert chat_app.messages == []
    assert [m.to for m in mail.outbox] == [["anna@example.com"]]


@pytest.mark.parametrize("status", [401, 403, 429, 500, 503])
def test_a_chat_outage_is_retried_later_and_the_email_goes_out(
    make_user, register, add_app, chat_app, status
):
    make_user("anna")
    add_app("anna@example.com")
    chat_app.outage = status

    created = register(assignees=["anna@example.com"])
    send_notifications()
    chat_app.outage = None

    notice = Notice.objects.get(request_id=created["id"], channel="google_chat")
    assert (notice.state, notice.attempts) == (Notice.State.DUE, 1)
    assert f"HTTP {status}" in notice.last_error
    assert "test-access-token" not in notice.last_error
    assert [m.to for m in mail.outbox] == [["anna@example.com"]]
    Notice.objects.filter(pk=notice.pk).update(due_at=notice.created_at)
    send_notifications()
    assert Notice.objects.get(pk=notice.pk).state == Notice.State.SENT
    assert len(chat_app.messages) == 1


def test_a_chat_api_that_cannot_be_reached_fails_the_channel_for_a_retry(
    settings, make_user, register, add_app
):
    make_user("anna")
    add_app("anna@example.com")
    settings.APPROVALS_GOOGLE_CHAT_API_URL = f"http://127.0.0.1:{free_port()}/"

    created = register(assignees=["anna@example.com"])
    send_notifications()

    notice = Notice.objects.get(request_id=created["id"], channel="google_chat")
    assert notice.state == Notice.State.DUE
    assert notice.last_error == "ConnectionError calling the Chat API"
    assert Notice.objects.get(request_id=created["id"], channel="email").state == "sent"


def test_a_space_the_app_was_removed_from_is_not_retried_and_forgotten(
    make_user, register, add_app, chat_app
):
    make_user("anna")
    space = add_app("anna@example.com")
    chat_app.remove_from(space)  # and the event was lost

    created = register(assignees=["anna@example.com"])
    send_notifications()

    notice = Notice.objects.get(request_id=created["id"], channel="google_chat")
    assert notice.state == Notice.State.FAILED
    assert not ChatAccount.objects.exists()


def test_a_retry_after_a_lost_answer_does_not_post_twice(make_user, register, add_app, chat_app):
    make_user("anna")
    space = add_app("anna@example.com")
    created = register(assignees=["anna@example.com"])
    send_notifications()
    notice = Notice.objects.get(request_id=created["id"], channel="google_chat")
    first_ref = notice.ref
    # As if the answer had been lost: the notice is still due, the message exists.
    Notice.objects.filter(pk=notice.pk).update(state=Notice.State.DUE, due_at=notice.created_at)

    send_notifications()

    assert Notice.objects.get(pk=notice.pk).ref == first_ref
    assert len([m for m in chat_app.messages_in(space) if m.cards_v2]) == 1


def test_removing_the_app_forgets_the_space(add_app, send_event):
    space = add_app("anna@example.com")

    send_event(google_chat.removed_from_space(space))

    assert not ChatAccount.objects.exists()


def test_adding_the_app_twice_keeps_one_account_and_welcomes(chat_app, send_event):
    space = chat_app.install_for("Anna@Example.com", "Anna")

    first = send_event(google_chat.added_to_space(space))
    second = send_event(google_chat.added_to_space(space))

    assert first == second
    assert "Hello Anna" in first["text"]
    assert ChatAccount.objects.get().email_key == "anna@example.com"


def test_a_person_who_adds_the_app_finds_the_requests_already_waiting_there_once(
    make_user, register, chat_app, send_event
):
    anna = make_user("anna")
    register(assignees=["anna@example.com"], title="Team offsite")
    register(assignees=["anna@example.com"], title="New laptop")
    decided = register(assignees=["anna@example.com"], title="Decided already")
    services.decide(decided["id"], anna, "approved", "")
    send_notifications()  # the first notices went by e-mail: anna had no Chat yet
    space = chat_app.install_for("anna@example.com", "Anna")

    welcome = send_event(google_chat.added_to_space(space))
    again = send_event(google_chat.added_to_space(space))  # Chat delivered the event twice
    send_notifications()

    assert "2 requests already wait for you" in welcome["text"]
    assert "already wait" not in again["text"]
    titles = sorted(
        ApprovalRequest.objects.get(pk=n.request_id).title
        for n in Notice.objects.filter(channel="google_chat", state="sent")
    )
    assert titles == ["New laptop", "Team offsite"]
    assert len([m for m in chat_app.messages_in(space) if m.cards_v2]) == 2


def test_a_message_to_the_app_gets_the_help_and_keeps_the_space_whose_add_was_missed(
    chat_app, send_event
):
    space = chat_app.install_for("anna@example.com")

    answer = send_event(google_chat.message(space, "hello?"))

    assert "http://testserver/" in answer["text"]
    assert ChatAccount.objects.get().conversation == space.name


def test_adding_the_app_to_a_room_keeps_nothing(chat_app, send_event):
    event = google_chat.added_to_space(chat_app.install_for("anna@example.com"))
    event["space"] = {**event["space"], "type": "ROOM", "spaceType": "SPACE"}

    answer = send_event(event)

    assert "direct message" in answer["text"]
    assert not ChatAccount.objects.exists()


# Tokens


@pytest.mark.parametrize("form", ["endpoint", "project"])
def test_chats_token_is_accepted_in_the_configured_audience_form(
    client, settings, chat_app, chat_tokens, form
):
    audience = EVENTS_URL if form == "endpoint" else PROJECT_NUMBER
    settings.APPROVALS_GOOGLE_CHAT_AUDIENCE = audience
    token = (
        chat_tokens.for_endpoint_url(audience)
        if form == "endpoint"
        else chat_tokens.for_project_number(audience)
    )
    space = chat_app.install_for("anna@example.com")

    answered = post(client, google_chat.message(space, "hi"), token)

    assert answered.status_code == 200


@pytest.mark.parametrize(
    ("audience", "token_of"),
    [
        (EVENTS_URL, lambda t: t.for_endpoint_url("https://elsewhere.example/events")),
        (EVENTS_URL, lambda t: t.for_endpoint_url(EVENTS_URL, email="someone@example.com")),
        (EVENTS_URL, lambda t: t.for_endpoint_url(EVENTS_URL, email_verified=False)),
        (EVENTS_URL, lambda t: t.for_endpoint_url(EVENTS_URL, iss="https://evil.example")),
        (EVENTS_URL, lambda t: t.for_endpoint_url(EVENTS_URL, exp=1_000_000, iat=900_000)),
        (EVENTS_URL, lambda t: t.for_project_number(EVENTS_URL)),  # Chat's key, not Google's
        (PROJECT_NUMBER, lambda t: t.for_project_number("999999999999")),
        (PROJECT_NUMBER, lambda t: t.for_endpoint_url(PROJECT_NUMBER)),  # Google's key
        (PROJECT_NUMBER, lambda t: t.for_project_number(PROJECT_NUMBER, iss="x@example.com")),
        (EVENTS_URL, lambda t: "not-a-token"),
        (EVENTS_URL, lambda t: _unsigned(t.for_endpoint_url(EVENTS_URL))),
        (EVENTS_URL, lambda t: ""),
    ],
)
def test_an_event_without_chats_valid_token_is_a_401(
    client, settings, chat_app, chat_tokens, audience, token_of
):
    settings.APPROVALS_GOOGLE_CHAT_AUDIENCE = audience
    space = chat_app.install_for("anna@example.com")

    answered = post(client, google_chat.added_to_space(space), token_of(chat_tokens))

    assert answered.status_code == 401
    assert answered.json()["error"]
    assert not ChatAccount.objects.exists()


def _unsigned(token: str) -> str:
    header, payload, _signature = token.split(".")
    return f"{header}.{payload}."


def test_the_token_is_checked_before_the_body_is_read(client, chat_app, chat_tokens):
    forged = chat_tokens.for_endpoint_url("https://elsewhere.example/events")

    answered = client.post(
        PATH, "{not json", content_type="application/json", headers={"Authorization": forged}
    )
    unsigned = client.post(PATH, "{not json", content_type="application/json")

    assert (answered.status_code, unsigned.status_code) == (401, 401)


def test_chat_turned_off_is_a_404(client, settings, chat_tokens):
    settings.APPROVALS_GOOGLE_CHAT_AUDIENCE = ""

    answered = post(client, {"type": "MESSAGE"}, chat_tokens.for_endpoint_url(EVENTS_URL))

    assert answered.status_code == 404


# Hostile events


DEEP = '{"x":' * 20_000 + "{}" + "}" * 20_000

HOSTILE = [
    ({"type": "SOMETHING_ELSE"}, "type"),
    ({"type": 42}, "type"),
    ([], "object"),
    ({"type": "ADDED_TO_SPACE", "space": "spaces/x"}, "space.name"),
    ({"type": "ADDED_TO_SPACE", "space": {"name": "s", "type": "DM"}, "user": {"email": 5}}, ""),
    ({"type": "CARD_CLICKED", "common": {"invokedFunction": "format_disk"}}, "invokedFunction"),
    (
        {"type": "CARD_CLICKED", "common": {"invokedFunction": "decide", "parameters": []}},
        "parameters",
    ),
    (
        {
            "type": "CARD_CLICKED",
            "common": {
                "invokedFunction": "decide",
                "parameters": {"approval": "42; DROP TABLE", "outcome": "approved"},
            },
        },
        "approval",
    ),
    (
        {
            "type": "CARD_CLICKED",
            "common": {
                "invokedFunction": "decide",
                "parameters": {
                    "approval": "6f1c1a34-3d51-4a4e-9a0e-1b1b1b1b1b1b",
                    "outcome": "maybe",
                },
            },
        },
        "outcome",
    ),
    (
        {
            "type": "CARD_CLICKED",
            "user": {"email": "anna@example.com", "name": "users/1"},
            "isDialogEvent": True,
            "dialogEventType": "SUBMIT_DIALOG",
            "common": {
                "invokedFunction": "submit",
                "parameters": {
                    "approval": "6f1c1a34-3d51-4a4e-9a0e-1b1b1b1b1b1b",
                    "outcome": "rejected",
                },
                "formInputs": {"comment": "not the shape"},
            },
        },
        "formInputs",
    ),
    (
        {"type": "ADDED_TO_SPACE", "space": {"name": "spaces/" + "x" * 300, "type": "DM"}},
        "space.name: at most 200",
    ),
    (
        {
            "type": "MESSAGE",
            "space": {"name": "spaces/a", "type": "DM"},
            "user": {"email": "anna@example.com", "name": "users/\u0000"},
        },
        "user.name",
    ),
    (
        {
            "type": "CARD_CLICKED",
            "isDialogEvent": True,
            "dialogEventType": "SUBMIT_DIALOG",
            "common": {
                "invokedFunction": "decide",
                "parameters": {
                    "approval": "6f1c1a34-3d51-4a4e-9a0e-1b1b1b1b1b1b",
                    "outcome": "approved",
                },
            },
        },
        "dialogEventType",
    ),
    (DEEP, "JSON"),
    ("{not json", "JSON"),
]


@pytest.mark.parametrize(("event", "said"), HOSTILE)
def test_a_malformed_event_is_a_400_with_a_message(
    client, chat_app, chat_tokens, make_user, event, said
):
    make_user("anna")
    body = event if isinstance(event, str) else json.dumps(event)
    token = chat_tokens.for_endpoint_url(EVENTS_URL)

    answered = client.post(
        PATH, body, content_type="application/json", headers={"Authorization": f"Bearer {token}"}
    )

    assert answered.status_code == 400
    assert said in answered.json()["error"]


def test_a_huge_event_is_a_400(client, chat_app, chat_tokens):
    token = chat_tokens.for_endpoint_url(EVENTS_URL)
    body = json.dumps({"type": "MESSAGE", "padding": "x" * 300_000})

    answered = client.post(
        PATH, body, content_type="application/json", headers={"Authorization": f"Bearer {token}"}
    )

    assert answered.status_code == 400
    assert "larger" in answered.json()["error"]


def test_a_click_naming_a_request_that_does_not_exist_says_so(make_user, chat_app, send_event):
    make_user("anna")
    space = chat_app.install_for("anna@example.com")
    chat_app.messages.append(
        google_chat.ChatMessage(
            f"{space.name}/messages/forged",
            space,
            {"cardsV2": [{"cardId": "c", "card": {"sections": [{"widgets": [FORGED]}]}}]},
            "2026-01-01T00:00:00Z",
        )
    )

    answer = send_event(google_chat.card_clicked(chat_app.messages[-1], "Approve"))

    assert answer["text"] == "There is no such request."


FORGED = {
    "buttonList": {
        "buttons": [
            {
                "text": "Approve",
                "onClick": {
                    "action": {
                        "function": "decide",
                        "parameters": [
                            {"key": "approval", "value": "6f1c1a34-3d51-4a4e-9a0e-1b1b1b1b1b1b"},
                            {"key": "outcome", "value": "approved"},
                        ],
                    }
                },
            }
        ]
    }
}


# The one-rule agreement (test_policies' SHAPES): a Chat click decides exactly where the page does


def chat_approve_agrees(client, signing_key, request_id) -> None:
    """For every user: the card offers the buttons `notify.chat.buttons` offers to a decider, and
    an Approve from Chat (a click, or the dialog with valid inputs where inputs are asked) decides
    exactly when `decider_capacity` lets them; each try is rolled back, so all see one state.

    Chat is on with the endpoint-URL audience, whose tokens Google's OIDC key (`signing_key`)
    signs: no other stand-in is needed, the card's click is answered without the Chat API."""
    chat_tokens = google_chat.ChatTokens(signing_key, chat_key=None)
    approval = ApprovalRequest.objects.get(pk=request_id)
    offered = said.buttons(approval)
    as_sent = card_message(replace(_summary(approval, ""), buttons=offered), request_id)
    for account in get_user_model().objects.order_by("username"):
        capacity = permissions.decider_capacity(account, approval)
        summary = _summary(approval, emails.canonical(account.email))
        if capacity.refusal is None:
            assert summary.buttons == offered, (account.username, summary)
        shown = card_message(summary, request_id)
        assert [b["text"] for b in _decision_buttons(shown)] == [b.label for b in summary.buttons]
        space = google_chat.ChatSpace(
            "spaces/DMagree", google_chat.ChatUser("users/7", account.email, account.username)
        )
        message = google_chat.ChatMessage(f"{space.name}/messages/1", space, as_sent, "")
        with transaction.atomic():
            before = Decision.objects.filter(request_id=request_id).count()
            with override_settings(APPROVALS_GOOGLE_CHAT_AUDIENCE=EVENTS_URL):
                _approve_from_chat(client, chat_tokens, message, offered)
            decided = Decision.objects.filter(request_id=request_id).count() > before
            transaction.set_rollback(True)
        assert decided == (capacity.refusal is None), (account.username, capacity)


def _summary(approval, email_key: str) -> said.Summary:
    return said.about(Notice(request=approval, purpose=Notice.Purpose.NEW, email_key=email_key))


def _decision_buttons(body: dict) -> list[dict]:
    return [b for b in google_chat._buttons(body) if "action" in b["onClick"]]


def _approve_from_chat(client, chat_tokens, message, offered) -> None:
    token = chat_tokens.for_endpoint_url(EVENTS_URL)
    [approve] = [b for b in offered if b.outcome == "approved"]
    answered = post(client, google_chat.card_clicked(message, "Approve"), token)
    assert answered.status_code == 200, answered.content
    dialog = answered.json()
    if not approve.opens_form or "dialog" not in dialog["actionResponse"]["dialogAction"]:
        return
    values = {
        f"input-{spec['name']}": spec["choices"][0] if spec["type"] == "choice" else "1"
        for spec in inputs.asked(message_approval(message).inputs, "approved")
    }
    submitted = google_chat.dialog_submitted(message, dialog, "Approve", values)
    assert post(client, submitted, token).status_code == 200


def message_approval(message) -> ApprovalRequest:
    [button] = [b for b in _decision_buttons(message.fields) if b["text"] == "Approve"]
    parameters = button["onClick"]["action"]["parameters"]
    return ApprovalRequest.objects.get(pk=parameters[0]["value"])


# The browsable stand-in of make run


@pytest.fixture
def demo(settings, metadata_server, live_server):
    """The Chat stand-in with its page, sending to the live app; the project-number audience,
    its certs served by the stand-in itself, as `python -m standins.google_chat` runs it."""
    chat_key = SigningKey("demo-chat-key")
    server = google_chat.ChatServer(metadata_server).start()
    page = DemoPage(
        server, live_server.url + PATH, PROJECT_NUMBER, google_chat.ChatTokens(None, chat_key)
    )
    certs = {google_chat.CHAT_CERTS_PATH: {chat_key.key_id: chat_key.cert_pem}}
    server.page = lambda handler: respond(handler, page, certs)
    settings.APPROVALS_GOOGLE_CHAT_AUDIENCE = PROJECT_NUMBER
    settings.APPROVALS_GOOGLE_CHAT_CERTS_URL = server.base_url + google_chat.CHAT_CERTS_PATH
    settings.APPROVALS_GOOGLE_CHAT_API_URL = server.api_url
    yield server
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_the_demo_page_adds_the_app_shows_the_card_and_its_buttons_decide(
    demo, make_user, register
):
    make_user("anna")
    page = requests.Session()
    page.post(demo.base_url + "/demo/add", data={"email": "anna@example.com"}, timeout=10)
    assert "Hello" in page.get(demo.base_url + "/", timeout=10).text  # the app's welcome
    created = register(assignees=["anna@example.com"])
    send_notifications()
    [card] = [m for m in demo.messages if m.cards_v2]
    assert '<button name="button" value="Approve">' in page.get(demo.base_url, timeout=10).text

    page.post(
        demo.base_url + "/demo/click",
        data={"message": card.name, "button": "Reject"},
        timeout=10,
    )
    assert "Comment" in page.get(demo.base_url, timeout=10).text  # the dialog, as a form
    page.post(
        demo.base_url + "/demo/submit",
        data={"message": card.name, "button": "Reject", "in.comment": "Not this year"},
        timeout=10,
    )

    event = AuditEvent.objects.get(request_id=created["id"], kind="rejected")
    assert event.payload["via"]["channel"] == "google_chat"
    assert "You rejected Team offsite." in page.get(demo.base_url, timeout=10).text
