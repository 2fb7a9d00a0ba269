"""Deciding from Slack (contract: "Chat channels"), against the Slack stand-in with slack_sdk's own
WebClient and SignatureVerifier: the direct messages `send_notifications` sends, the buttons and
modals, the person found by e-mail, every refusal, the signature, hostile payloads, retries, and
Slack down during a pass."""

import dataclasses
import datetime
import io
import json
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
import yaml
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from slack_sdk.signature import SignatureVerifier

from approvals import services
from approvals.models import (
    ApprovalRequest,
    AuditEvent,
    ChannelPreference,
    ChatAccount,
    Decision,
    Notice,
)
from approvals.notify import chat, slack_layout
from approvals.notify.channels import channel
from approvals.notify.channels import slack as slack_channel
from approvals.tests.conftest import decide_page
from standins.http import free_port
from standins.slack import BOT_SCOPES, BOT_TOKEN, SIGNING_SECRET, signed_request

# Real transactions: notices and callbacks leave once the transaction that made them commits.
pytestmark = pytest.mark.django_db(transaction=True)

URL = "/integrations/slack/interactions"
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def slack(slack_app):
    return slack_app


@pytest.fixture
def people(slack, make_user):
    """manager and ben (approvers), alice (the requester, an approver too) and nora (no
    approver), each in the Slack workspace under their e-mail."""
    for name in ("manager", "ben", "alice"):
        make_user(name)
    make_user("nora", approver=False)
    return {
        name: slack.add_user(f"{name}@example.com") for name in ("manager", "ben", "alice", "nora")
    }


def user(username):
    return get_user_model().objects.get(username=username)


def notices_pass() -> None:
    call_command("send_notifications", stdout=io.StringIO())


def post(client, outgoing, **headers):
    return client.post(
        URL,
        outgoing.body,
        content_type=outgoing.content_type,
        headers={**outgoing.headers, **headers},
    )


def click(client, slack, person, label, message=None):
    """`person` clicks `label` on their latest direct message (or `message`)."""
    message = message or slack.messages_to(person)[-1]
    return post(client, signed_request(slack.block_actions(person, message, label), SIGNING_SECRET))


def submit(client, slack, person, values, view=None):
    view = view or slack.views[-1]
    payload = slack.view_submission(person, view, values)
    return post(client, signed_request(payload, SIGNING_SECRET))


def buttons(message) -> list[str]:
    return [
        element["text"]["text"]
        for block in message.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def said(message) -> str:
    return json.dumps(message.blocks)


def ephemeral(slack) -> list[str]:
    return [
        body["text"]
        for _, body in slack.responses
        if body.get("response_type") == "ephemeral" and body.get("replace_original") is False
    ]


def registered(register, **fields):
    created = register(assignees=["manager@example.com", "ben@example.com"], **fields)
    notices_pass()
    return ApprovalRequest.objects.get(pk=created["id"])


def stale_message(slack, approval, person):
    """A decider's message about `approval` in `person`'s direct message, with every button
    the request offers, as it was sent while it still waited for them."""
    summary = chat.about(Notice(request=approval, purpose=Notice.Purpose.NEW, email_key="-"))
    summary = dataclasses.replace(summary, buttons=chat.buttons(approval), outcome_text="")
    blocks = slack_layout.decider_blocks(summary, approval.pk)
    sent = slack_channel.call("chat.postMessage", channel=person.id, text="-", blocks=blocks)
    return next(m for m in slack.messages if m.ts == sent["ts"])


def dm_about(approval, email):
    """A decider's message about `approval` sent to `email` on Slack, as the outbox sends one
    (a person it was never for, or a stale copy)."""
    notice = Notice(request=approval, purpose=Notice.Purpose.NEW, email=email, email_key=email)
    [result] = channel("slack").send([notice])
    assert result.sent, result
    return result.ref


# --- The whole loop -----------------------------------------------------------------------------


def test_approve_in_slack_decides_calls_back_and_updates_every_message(
    client, slack, people, register, receiver
):
    approval = registered(register)
    manager, ben = people["manager"], people["ben"]
    [to_manager], [to_ben] = slack.messages_to(manager), slack.messages_to(ben)
    assert buttons(to_manager) == buttons(to_ben) == ["Approve", "Reject"]
    assert approval.title in said(to_manager) and str(approval.pk) in said(to_manager)
    assert (
        ChatAccount.objects.get(channel="slack", email_key="manager@example.com").user_id
        == manager.id
    )

    response = click(client, slack, manager, "Approve")

    assert response.status_code == 200
    decision = Decision.objects.get(request=approval)
    assert (decision.outcome, decision.decided_by) == ("approved", "manager@example.com")
    event = AuditEvent.objects.get(request=approval, kind=decision.outcome)
    assert event.payload["via"] == {"channel": "slack", "user": manager.id}
    assert [callback.body["decision"] for callback in receiver.received] == ["approved"]
    assert buttons(to_manager) == [] and "Approved by manager@example.com" in said(to_manager)
    assert buttons(to_ben) == ["Approve", "Reject"]  # until the next pass
    notices_pass()
    assert buttons(to_ben) == [] and "Approved by manager@example.com" in said(to_ben)


@pytest.mark.parametrize(
    ("label", "fields", "outcome"),
    [
        ("Reject", {}, "rejected"),
        ("Send back", {"allow_changes_requested": True}, "changes_requested"),
    ],
)
def test_reject_and_send_back_ask_for_a_comment_in_a_modal(
    client, slack, people, register, receiver, label, fields, outcome
):
    approval = registered(register, **fields)
    manager = people["manager"]

    assert click(client, slack, manager, label).status_code == 200
    [view] = slack.views
    comment = view.view["blocks"][1]
    assert (comment["label"]["text"], comment["optional"]) == ("Comment", False)
    refused = submit(client, slack, manager, {"comment": "  "})
    assert refused.json()["response_action"] == "errors"
    assert "comment is required" in refused.json()["errors"]["comment"]
    assert not Decision.objects.exists()

    done = submit(client, slack, manager, {"comment": "Over budget"})

    assert done.json() == {"response_action": "clear"}
    decision = Decision.objects.get(request=approval)
    assert (decision.outcome, decision.comment) == (outcome, "Over budget")
    assert receiver.received[0].body["comment"] == "Over budget"
    assert "Over budget" in said(slack.messages_to(manager)[0])


INPUTS = [
    {"name": "note", "label": "Note", "type": "text"},
    {"name": "share", "label": "Share", "type": "number", "min": 0, "max": 120.5, "required": True},
    {"name": "until", "label": "Until", "type": "date"},
    {"name": "centre", "label": "Cost centre", "type": "choice", "choices": ["R&D", "Sales"]},
    {"name": "ok", "label": "Policy checked", "type": "boolean", "required": True},
]


def test_approve_opens_a_modal_with_the_inputs_and_shows_their_errors_there(
    client, slack, people, register, receiver
):
    approval = registered(register, inputs=INPUTS)
    manager = people["manager"]

    click(client, slack, manager, "Approve")
    [view] = slack.views
    kinds = {block["block_id"]: block["element"]["type"] for block in view.view["blocks"][1:]}
    assert kinds == {
        "comment": "plain_text_input",
        "input_note": "plain_text_input",
        "input_share": "number_input",
        "input_until": "datepicker",
        "input_centre": "static_select",
        "input_ok": "checkboxes",
    }
    refused = submit(client, slack, manager, {"input_share": "500", "input_ok": []})
    assert set(refused.json()["errors"]) == {"input_share", "input_ok"}
    assert not Decision.objects.exists()

    values = {
        "input_note": "Fine",
        "input_share": "100.25",
        "input_until": "2030-06-30",
        "input_centre": "0",
        "input_ok": ["true"],
    }
    assert submit(client, slack, manager, values).json() == {"response_action": "clear"}
    decision = Decision.objects.get(request=approval)
    assert decision.inputs == {
        "note": "Fine",
        "share": "100.25",
        "until": "2030-06-30",
        "centre": "R&D",
        "ok": True,
    }
    assert receiver.received[0].body["decision"] == "approved"


# --- Refusals speak -----------------------------------------------------------------------------


def _requester(slack, people, approval):
    dm_about(approval, "alice@example.com")
    return people["alice"]


def _non_approver(slack, people, approval):
    dm_about(approval, "nora@example.com")
    return people["nora"]


def _already_decided(slack, people, approval):
    ApprovalRequest.objects.filter(pk=approval.pk).update(required_approvals=2)
    click_as = people["manager"]
    services.decide(approval.pk, user("manager"), "approved", "")
    return click_as


def _closed(slack, people, approval):
    services.decide(approval.pk, user("ben"), "rejected", "No budget")
    return people["manager"]


def _expired(slack, people, approval):
    past = timezone.now() - datetime.timedelta(minutes=1)
    ApprovalRequest.objects.filter(pk=approval.pk).update(expires_at=past)
    return people["manager"]


def _stranger(slack, people, approval):
    person = slack.add_user("stranger@example.com")
    dm_about(approval, "stranger@example.com")
    return person


def _no_email(slack, people, approval):
    slack.scopes = tuple(s for s in slack.scopes if s != "users:read.email")
    return people["manager"]


REFUSALS = {
    "requester": (_requester, "you asked for this approval"),
    "non-approver": (_non_approver, "not"),
    "already decided": (_already_decided, "You already approved"),
    "closed": (_closed, "already rejected by ben@example.com"),
    "expired": (_expired, "expired"),
    "no matching user": (_stranger, "No Approver account has the e-mail address"),
    "profile without e-mail": (_no_email, "profile shows no e-mail address"),
}


@pytest.mark.parametrize("label", ["Approve", "Reject"])
@pytest.mark.parametrize("case", REFUSALS)
def test_a_person_who_may_not_decide_is_told_so_and_nothing_is_recorded(
    client, slack, people, register, case, label
):
    approval = registered(register)
    setup, expected = REFUSALS[case]
    person = setup(slack, people, approval)
    before = Decision.objects.count()
    message = slack.messages_to(person)[0]  # the first message, stale if anything happened since

    response = click(client, slack, person, label, message)

    assert response.status_code == 200
    [told] = ephemeral(slack)
    assert expected.lower() in told.lower(), told
    assert Decision.objects.count() == before
    assert slack.views == []  # no modal to fill in for nothing


def test_a_refusal_in_the_modal_is_shown_in_the_modal(client, slack, people, register):
    approval = registered(register)
    manager = people["manager"]
    click(client, slack, manager, "Reject")
    _closed(slack, people, approval)

    refused = submit(client, slack, manager, {"comment": "Too late"})

    assert "already rejected by ben@example.com" in refused.json()["errors"]["comment"]
    assert Decision.objects.filter(decided_by="manager@example.com").count() == 0


# --- Verified before anything is read ----------------------------------------------------------


def _signed_then_changed(payload):
    outgoing = signed_request(payload, SIGNING_SECRET)
    return outgoing.body.replace(b"Approve", b"Reject!"), outgoing.headers


def _other_secret(payload):
    outgoing = signed_request(payload, "not-the-signing-secret")
    return outgoing.body, outgoing.headers


def _old(payload):
    outgoing = signed_request(payload, SIGNING_SECRET, timestamp=time.time() - 301)
    return outgoing.body, outgoing.headers


def _no_headers(payload):
    outgoing = signed_request(payload, SIGNING_SECRET)
    return outgoing.body, {"Content-Type": outgoing.content_type}


def _bad_timestamp(payload):
    outgoing = signed_request(payload, SIGNING_SECRET)
    return outgoing.body, {**outgoing.headers, "X-Slack-Request-Timestamp": "soon"}


@pytest.mark.parametrize(
    "forge", [_signed_then_changed, _other_secret, _old, _no_headers, _bad_timestamp]
)
def test_a_request_slack_did_not_sign_now_is_a_401_and_decides_nothing(
    client, slack, people, register, forge
):
    registered(register)
    manager = people["manager"]
    payload = slack.block_actions(manager, slack.messages_to(manager)[0], "Approve")
    body, headers = forge(payload)

    response = client.post(URL, body, content_type=headers["Content-Type"], headers=headers)

    assert response.status_code == 401
    assert b"signing secret" in response.content
    assert not Decision.objects.exists()
    assert not [call for call in slack.calls if call[0] == "users.info"]


def test_slack_turned_off_is_a_404(client, settings):
    settings.APPROVALS_SLACK_BOT_TOKEN = ""
    outgoing = signed_request({"type": "block_actions"}, SIGNING_SECRET)
    assert post(client, outgoing).status_code == 404


def signed_body(body: str):
    stamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=stamp, body=body)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
    }


def _form(payload) -> str:
    return urlencode({"payload": payload if isinstance(payload, str) else json.dumps(payload)})


def _click_with(slack, people, approval, **changes):
    manager = people["manager"]
    payload = slack.block_actions(manager, slack.messages_to(manager)[0], "Approve")
    action = {**payload["actions"][0], **changes.pop("action", {})}
    return {**payload, "actions": [action], **changes}


MALFORMED = {
    "no payload": lambda *_: "text=hello",
    "not a form": lambda *_: "%%%",
    "payload not JSON": lambda *_: _form("{not json"),
    "payload a list": lambda *_: _form([1, 2]),
    "unknown type": lambda *_: _form({"type": "shortcut"}),
    "no actions": lambda *a: _form(_click_with(*a, actions=[])),
    "actions not a list": lambda *a: _form(_click_with(*a, actions="approve")),
    "unknown action": lambda *a: _form(_click_with(*a, action={"action_id": "delete_all"})),
    "action id a number": lambda *a: _form(_click_with(*a, action={"action_id": 7})),
    "forged request id": lambda *a: _form(_click_with(*a, action={"value": "42"})),
    "unknown request id": lambda *a: _form(
        _click_with(*a, action={"value": "7c0c7c0c-0000-4000-8000-000000000000"})
    ),
    "no user": lambda *a: _form(_click_with(*a, user=None)),
    "response_url elsewhere": lambda *a: _form(
        _click_with(*a, response_url="https://attacker.example/actions/1")
    ),
    "user id a list": lambda *a: _form(_click_with(*a, user={"id": ["U1"]})),
    "another modal": lambda *_: _form({"type": "view_submission", "view": {"callback_id": "x"}}),
    "modal without metadata": lambda *_: _form(
        {"type": "view_submission", "view": {"callback_id": "decide", "private_metadata": "{"}}
    ),
    "huge": lambda *_: _form({"type": "block_actions", "padding": "x" * 300_000}),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_signed_payload_approver_cannot_act_on_is_a_400_with_a_message(
    client, slack, people, register, case
):
    approval = registered(register)
    body = MALFORMED[case](slack, people, approval)
    headers = signed_body(body)

    response = client.post(URL, body, content_type=headers["Content-Type"], headers=headers)

    assert response.status_code == 400
    assert response.content.strip()
    assert not Decision.objects.exists()


# --- Retries, outages, other channels ----------------------------------------------------------


@pytest.mark.parametrize("person", ["manager", "alice"])
def test_an_interaction_slack_sends_again_is_handled_once(client, slack, people, register, person):
    approval = registered(register)
    if person == "alice":
        dm_about(approval, "alice@example.com")
    clicker = people[person]
    outgoing = signed_request(
        slack.block_actions(clicker, slack.messages_to(clicker)[0], "Approve"), SIGNING_SECRET
    )

    first = post(client, outgoing)
    again = post(
        client, outgoing, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )

    assert first.status_code == again.status_code == 200
    assert Decision.objects.count() == (1 if person == "manager" else 0)
    assert len(slack.responses) == (0 if person == "manager" else 1)  # no second refusal
    assert AuditEvent.objects.filter(kind="approved").count() == Decision.objects.count()


@pytest.mark.parametrize("kind", ["error", "ratelimited", "unreachable"])
def test_slack_down_during_a_pass_is_retried_later_and_the_mail_still_goes(
    client, slack, people, register, settings, kind
):
    if kind == "unreachable":
        settings.APPROVALS_SLACK_API_URL = f"http://127.0.0.1:{free_port()}/api/"
    else:
        slack.fail(kind)
    approval = registered(register)

    assert {m.to[0] for m in mail.outbox} == {"manager@example.com", "ben@example.com"}
    waiting = Notice.objects.filter(request=approval, channel="slack")
    assert {(n.state, n.due_at is not None) for n in waiting} == {("due", True)}
    failed = AuditEvent.objects.get(request=approval, kind="notify_failed")
    assert (failed.payload["channel"], failed.payload["retry"]) == ("slack", True)
    assert BOT_TOKEN not in failed.payload["error"]

    slack.recover()
    settings.APPROVALS_SLACK_API_URL = slack.api_url
    waiting.update(due_at=timezone.now())
    notices_pass()
    assert {n.state for n in waiting} == {"sent"}
    assert len(slack.messages) == 2 and len(mail.outbox) == 2  # the mail once


def test_a_bot_token_slack_refuses_fails_the_pass_with_the_setting_named(
    slack, people, register, settings
):
    settings.APPROVALS_SLACK_BOT_TOKEN = "xoxb-a-revoked-token"
    approval = registered(register)

    errors = {n.last_error for n in Notice.objects.filter(request=approval, channel="slack")}
    assert len(errors) == 1
    [error] = errors
    assert "APPROVALS_SLACK_BOT_TOKEN" in error and "xoxb-a-revoked-token" not in error
    assert slack.messages == []


def test_someone_not_in_the_workspace_gets_mail_and_no_more_slack_notices(
    slack, make_user, register
):
    make_user("manager")
    make_user("ben")
    first = registered(register)
    assert {n.state for n in Notice.objects.filter(request=first, channel="slack")} == {"failed"}
    ChannelPreference.objects.create(email_key="ben@example.com", off=["email"])
    mail.outbox.clear()

    second = registered(register)

    assert not Notice.objects.filter(request=second, channel="slack").exists()
    # Ben kept Slack only, which does not reach him: e-mail comes back by itself.
    assert {m.to[0] for m in mail.outbox} == {"manager@example.com", "ben@example.com"}
    lookups = [call for call in slack.calls if call[0] == "users.lookupByEmail"]
    assert len(lookups) == 2  # once each, in the first pass


def test_someone_who_kept_slack_only_and_is_not_in_the_workspace_gets_that_notice_by_mail(
    slack, make_user, register
):
    make_user("manager")
    ChannelPreference.objects.create(email_key="manager@example.com", off=["email"])

    approval = registered(register)

    [given_up] = Notice.objects.filter(request=approval, channel="slack")
    assert given_up.state == "failed"
    [instead] = Notice.objects.filter(request=approval, channel="email")
    assert instead.state == "sent" and instead.created_at == given_up.created_at
    assert [m.to for m in mail.outbox] == [["manager@example.com"]]
    notices_pass()
    assert len(mail.outbox) == 1  # once


def test_a_decision_on_the_page_updates_the_slack_messages_at_the_next_pass(
    client, slack, people, register
):
    approval = registered(register)
    decide_page(client, user("ben"), approval.pk, "rejected", "No budget")

    notices_pass()

    for person in ("manager", "ben"):
        [message] = slack.messages_to(people[person])
        assert buttons(message) == [] and "Rejected by ben@example.com" in said(message)


def test_a_delegates_partial_approval_updates_the_delegators_message_too(
    slack, people, make_user, register
):
    make_user("dora")
    slack.add_user("dora@example.com")
    services.delegate(
        user("manager"), user("ben"), ends_at=timezone.now() + datetime.timedelta(days=1)
    )
    created = register(assignees=["manager@example.com", "dora@example.com"], required_approvals=2)
    notices_pass()
    decided = services.decide(created["id"], user("ben"), "approved", "")
    assert decided.decision.on_behalf_of == "manager@example.com"

    notices_pass()

    [managers] = slack.messages_to(people["manager"])
    assert buttons(managers) == []
    assert "ben@example.com approved on your behalf; waiting for 1 more approval" in said(managers)
    # ben's messages: that he was named manager's delegate, then the request, as that delegate
    bens = slack.messages_to(people["ben"])[-1]
    assert buttons(bens) == [] and "You approved; waiting for 1 more approval" in said(bens)
    [doras] = slack.messages_to(slack.users[-1])
    assert buttons(doras) == ["Approve", "Reject"]  # her say is still hers to give


def test_a_person_who_turned_slack_off_gets_no_slack_message(slack, people, register):
    ChannelPreference.objects.create(email_key="manager@example.com", off=["slack"])

    registered(register)

    assert slack.messages_to(people["manager"]) == []
    assert len(slack.messages_to(people["ben"])) == 1
    assert "manager@example.com" in {m.to[0] for m in mail.outbox}


def test_the_requester_hears_the_outcome_in_slack(client, slack, people, register):
    registered(register)
    click(client, slack, people["manager"], "Approve")

    notices_pass()

    [told] = slack.messages_to(people["alice"])
    assert "was approved" in told.text + said(told)


def test_a_new_delegate_is_told_in_slack(slack, people):
    delegation = services.delegate(
        user("manager"), user("ben"), timezone.now() + datetime.timedelta(days=3)
    )

    notices_pass()

    [told] = slack.messages_to(people["ben"])
    assert "manager@example.com named you their delegate" in told.text
    assert Notice.objects.get(delegation=delegation, channel="slack").state == "sent"


# --- The demo page (make run) -------------------------------------------------------------------


def test_the_demo_page_renders_the_messages_and_its_forms_decide_through_the_app(
    slack, people, register, live_server
):
    slack.app_url = live_server.url + URL
    approval = registered(register)
    manager = people["manager"]
    [message] = slack.messages_to(manager)
    page = requests.get(slack.base_url + "/", timeout=5).text
    assert approval.title in page and ">Approve</button>" in page and "confirm(" in page

    demo = slack.base_url + "/demo/"
    click = {"user": manager.id, "ts": message.ts, "action": "rejected"}
    assert requests.post(demo + "click", click, allow_redirects=False, timeout=5).status_code == 303
    [view] = slack.views
    requests.post(demo + "submit", {"view": view.id, "comment": ""}, timeout=5)
    assert "a comment is required" in requests.get(slack.base_url + "/", timeout=5).text
    requests.post(demo + "submit", {"view": view.id, "comment": "Not this quarter"}, timeout=5)

    decision = Decision.objects.get(request=approval)
    assert (decision.outcome, decision.comment) == ("rejected", "Not this quarter")
    page = requests.get(slack.base_url + "/", timeout=5).text
    assert "Rejected by manager@example.com" in page and 'action="/demo/submit"' not in page


def test_the_manifest_asks_for_the_contracts_scopes_and_names_the_interactivity_url():
    manifest = yaml.safe_load((DOCS / "slack-manifest.yaml").read_text())

    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)
    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    assert interactivity["request_url"].endswith(reverse("approvals:slack-interactions"))


def test_a_direct_message_kept_from_before_that_slack_no_longer_knows_is_found_anew(
    slack, people, register
):
    manager = people["manager"]
    ChatAccount.objects.create(
        channel="slack", email_key="manager@example.com", user_id=manager.id, conversation="DGONE"
    )
    approval = registered(register)
    notice = Notice.objects.get(request=approval, channel="slack", email_key="manager@example.com")
    assert (notice.state, notice.last_error) == ("due", "Slack: channel_not_found")

    Notice.objects.filter(pk=notice.pk).update(due_at=timezone.now())
    notices_pass()

    assert len(slack.messages_to(manager)) == 1
    assert ChatAccount.objects.get(email_key="manager@example.com").conversation == manager.dm


def test_an_update_of_a_message_slack_no_longer_has_is_not_tried_again(
    client, slack, people, register
):
    approval = registered(register)
    slack.messages.remove(slack.messages_to(people["ben"])[0])  # ben deleted it

    click(client, slack, people["manager"], "Approve")
    notices_pass()

    update = Notice.objects.get(request=approval, purpose="update", email_key="ben@example.com")
    assert (update.state, update.last_error) == ("failed", "Slack: message_not_found")


@pytest.mark.parametrize(("retry_after", "lookups"), [(1, 2), (30, 1)])
def test_a_brief_rate_limit_is_waited_out_once_and_a_long_one_left_to_the_outbox(
    slack, people, register, retry_after, lookups
):
    slack.retry_after = retry_after
    slack.fail("ratelimited", "users.lookupByEmail")

    approval = registered(register)

    notice = Notice.objects.get(request=approval, channel="slack", email_key="manager@example.com")
    assert (notice.state, notice.last_error) == (
        "due",
        "Slack users.lookupByEmail: HTTP 429 ratelimited",
    )
    # The batch stops at the first person once Slack is down: one lookup, retried or not.
    assert [call[0] for call in slack.calls].count("users.lookupByEmail") == lookups


def test_a_modal_slack_no_longer_lets_open_tells_the_person_to_click_again(
    client, slack, people, register
):
    registered(register)
    manager = people["manager"]
    payload = slack.block_actions(manager, slack.messages_to(manager)[0], "Reject")
    slack.clock = lambda: time.monotonic() + 10  # the trigger is older than Slack's 3 s

    assert post(client, signed_request(payload, SIGNING_SECRET)).status_code == 200

    assert slack.views == []
    [told] = ephemeral(slack)
    assert "click the button again" in told
    assert not Decision.objects.exists()
