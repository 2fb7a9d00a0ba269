"""The chat platforms' stand-ins speak the protocols the app will be written against: Slack's Web
API as slack_sdk's own WebClient calls it, Slack's signed interaction requests as slack_sdk's own
SignatureVerifier checks them, the Chat API as google-auth's AuthorizedSession calls it with the
metadata stand-in's credentials, and Chat's bearer tokens as google-auth verifies them.
"""

import datetime
import json
import time
from urllib.parse import parse_qs

import google.auth
import pytest
import requests
from google.auth import exceptions as google_exceptions
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2 import id_token
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from standins import google_chat
from standins.google import SigningKey
from standins.google_chat_demo import DemoPage, respond
from standins.slack import BOT_SCOPES, BOT_TOKEN, SIGNING_SECRET, SlackServer, signed_request

EVENTS_URL = "https://approver.example.run.app/integrations/google-chat/events"
PROJECT_NUMBER = "123456789012"
COMMENT_MODAL = {
    "type": "modal",
    "callback_id": "reject",
    "private_metadata": "approval-42",
    "title": {"type": "plain_text", "text": "Reject"},
    "submit": {"type": "plain_text", "text": "Reject"},
    "blocks": [
        {
            "type": "input",
            "block_id": "comment",
            "label": {"type": "plain_text", "text": "Comment"},
            "element": {"type": "plain_text_input", "action_id": "comment", "multiline": True},
        },
        {
            "type": "input",
            "block_id": "cost_centre",
            "optional": True,
            "label": {"type": "plain_text", "text": "Cost centre"},
            "element": {
                "type": "static_select",
                "action_id": "choice",
                "options": [
                    {"text": {"type": "plain_text", "text": "Sales"}, "value": "sales"},
                    {"text": {"type": "plain_text", "text": "R&D"}, "value": "rnd"},
                ],
            },
        },
    ],
}


def decision_blocks(approval_id: str = "42") -> list[dict]:
    def button(label: str, action_id: str, **extra) -> dict:
        text = {"type": "plain_text", "text": label}
        return {
            "type": "button",
            "text": text,
            "action_id": action_id,
            "value": approval_id,
            **extra,
        }

    confirm = {
        "title": {"type": "plain_text", "text": "Approve?"},
        "text": {"type": "mrkdwn", "text": "Approve *Team offsite*?"},
        "confirm": {"type": "plain_text", "text": "Approve"},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Team offsite*: 800.00 EUR"}},
        {
            "type": "actions",
            "block_id": "decide",
            "elements": [
                button("Approve", "approve", style="primary", confirm=confirm),
                button("Reject", "reject", style="danger"),
            ],
        },
    ]


@pytest.fixture
def slack():
    server = SlackServer().start()
    yield server
    server.stop()


@pytest.fixture
def web_client(slack):
    return WebClient(token=BOT_TOKEN, base_url=slack.api_url)


@pytest.fixture
def ann(slack):
    return slack.add_user("Ann.Smith@Example.com")


@pytest.fixture
def posted(slack, web_client, ann):
    """A direct message to Ann with Approve and Reject buttons, as the app would post it."""
    web_client.chat_postMessage(channel=ann.id, text="Team offsite", blocks=decision_blocks())
    return slack.messages[-1]


def slack_error(call) -> dict:
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value.response


def test_slack_finds_a_person_by_email_without_regard_to_case(web_client, ann):
    found = web_client.users_lookupByEmail(email="ann.smith@example.com")

    assert found["user"]["id"] == ann.id
    profile = web_client.users_info(user=ann.id)["user"]["profile"]
    assert profile["email"] == "Ann.Smith@Example.com"
    unknown = slack_error(lambda: web_client.users_lookupByEmail(email="bob@example.com"))
    assert unknown["error"] == "users_not_found"


def test_slack_records_a_direct_message_and_its_updates(slack, web_client, ann):
    opened = web_client.conversations_open(users=[ann.id])
    again = web_client.conversations_open(users=ann.id)
    sent = web_client.chat_postMessage(
        channel=ann.id, text="Team offsite", blocks=decision_blocks()
    )
    updated = web_client.chat_update(channel=sent["channel"], ts=sent["ts"], text="Approved by Ann")

    assert opened["channel"]["id"] == sent["channel"] == ann.dm
    assert again["already_open"] is True
    assert updated["text"] == "Approved by Ann"
    [message] = slack.messages_to(ann)
    assert (message.ts, message.text) == (sent["ts"], "Approved by Ann")
    assert message.blocks[1]["elements"][0]["action_id"] == "approve"  # an update keeps blocks
    assert message.blocks[0]["block_id"]  # generated, as Slack does
    assert [version.get("text") for version in message.versions] == [
        "Team offsite",
        "Approved by Ann",
    ]


def test_slack_replaces_a_message_through_its_response_url_and_keeps_an_ephemeral_apart(
    slack, posted, ann
):
    payload = slack.block_actions(ann, posted, "Approve")
    url = payload["response_url"]

    requests.post(url, json={"response_type": "ephemeral", "text": "Only you"}, timeout=5)
    requests.post(url, json={"replace_original": True, "text": "Approved by Ann"}, timeout=5)

    assert slack.ephemeral_by_ts() == {posted.ts: ["Only you"]}
    assert (posted.text, posted.blocks) == ("Approved by Ann", None)


def test_slack_demo_page_lays_out_blocks_with_markup_escaped(slack, web_client, ann):
    blocks = decision_blocks()
    blocks[0]["text"]["text"] = "*<https://a.example/x|Team &lt;script&gt;>*"
    web_client.chat_postMessage(channel=ann.id, text="Team offsite", blocks=blocks)

    page = requests.get(slack.base_url + "/", timeout=5).text

    assert '<b><a href="https://a.example/x">Team &lt;script&gt;</a></b>' in page
    assert "<script>" not in page
    assert page.count("<button") == 3  # Add a person, Approve, Reject


def test_slack_takes_form_encoded_blocks_as_json_text(slack, web_client, ann):
    params = {"channel": ann.id, "text": "Team offsite", "blocks": json.dumps(decision_blocks())}

    web_client.api_call("chat.postMessage", params=params)

    assert slack.messages[-1].blocks[1]["block_id"] == "decide"


@pytest.mark.parametrize(
    ("token", "error"), [(None, "not_authed"), ("xoxb-someone-elses", "invalid_auth")]
)
def test_slack_refuses_a_missing_or_wrong_bot_token(slack, token, error):
    client = WebClient(token=token, base_url=slack.api_url)

    assert slack_error(client.auth_test)["error"] == error


@pytest.mark.parametrize(
    ("call", "needed"),
    [
        (lambda client, user: client.users_lookupByEmail(email=user.email), "users:read.email"),
        (lambda client, user: client.users_info(user=user.id), "users:read"),
        (lambda client, user: client.conversations_open(users=user.id), "im:write"),
        (lambda client, user: client.chat_postMessage(channel=user.id, text="x"), "chat:write"),
    ],
)
def test_slack_refuses_a_method_whose_scope_was_not_granted(call, needed):
    granted = [scope for scope in BOT_SCOPES if scope != needed]
    server = SlackServer(scopes=granted).start()
    try:
        user = server.add_user("ann@example.com")
        client = WebClient(token=BOT_TOKEN, base_url=server.api_url)

        response = slack_error(lambda: call(client, user))
    finally:
        server.stop()

    assert response["error"] == "missing_scope"
    assert response["needed"] == needed
    assert response["provided"] == ",".join(granted)


def test_slack_leaves_out_profile_emails_without_users_read_email():
    server = SlackServer(scopes=["chat:write", "users:read", "im:write"]).start()
    try:
        user = server.add_user("ann@example.com")
        client = WebClient(token=BOT_TOKEN, base_url=server.api_url)

        profile = client.users_info(user=user.id)["user"]["profile"]
    finally:
        server.stop()

    assert "email" not in profile


# (WebClient method, or a method name for a raw call past slack_sdk's own checks; arguments, in
# which {user}, {dm} and {ts} stand for Ann's id, her direct message and the posted message's ts)
SLACK_REFUSALS = [
    ("chat_postMessage", {"channel": "", "text": "x"}, "channel_not_found"),
    ("chat_postMessage", {"channel": "U404", "text": "x"}, "channel_not_found"),
    ("chat.postMessage", {"channel": "{user}"}, "no_text"),
    (
        "chat_postMessage",
        {"channel": "{user}", "text": "x", "blocks": [{"type": "section"}]},
        "invalid_blocks",
    ),
    (
        "chat_postMessage",
        {
            "channel": "{user}",
            "text": "x",
            "blocks": [{"type": "actions", "elements": [{"type": "button"}]}],
        },
        "invalid_blocks",
    ),
    ("chat_update", {"channel": "{dm}", "ts": "1.2", "text": "x"}, "message_not_found"),
    ("chat_update", {"channel": "{user}", "ts": "{ts}", "text": "x"}, "channel_not_found"),
    ("users_info", {"user": "U404"}, "user_not_found"),
    ("conversations_open", {"users": "U404"}, "user_not_found"),
    ("views_open", {"trigger_id": "1.2.abc", "view": COMMENT_MODAL}, "invalid_trigger_id"),
]


@pytest.mark.parametrize(
    ("method", "arguments", "error"),
    SLACK_REFUSALS,
    ids=[f"{method}-{error}" for method, _arguments, error in SLACK_REFUSALS],
)
def test_slack_refuses_what_slack_refuses(web_client, ann, posted, method, arguments, error):
    names = {"user": ann.id, "dm": posted.channel, "ts": posted.ts}
    given = {
        key: value.format(**names) if isinstance(value, str) else value
        for key, value in arguments.items()
    }
    if "." in method:
        response = slack_error(lambda: web_client.api_call(method, json=given))
    else:
        response = slack_error(lambda: getattr(web_client, method)(**given))

    assert response["error"] == error


def test_slack_names_each_block_problem(web_client, ann):
    blocks = [{"type": "section", "text": {"type": "plain_text", "text": "x" * 3001}}]

    response = slack_error(
        lambda: web_client.chat_postMessage(channel=ann.id, text="x", blocks=blocks)
    )

    assert response["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]


def test_a_trigger_opens_one_modal_within_three_seconds(slack, web_client, ann, posted):
    now = [1000.0]
    slack.clock = lambda: now[0]
    click = slack.block_actions(ann, posted, "Reject")

    opened = web_client.views_open(trigger_id=click["trigger_id"], view=COMMENT_MODAL)
    again = slack_error(
        lambda: web_client.views_open(trigger_id=click["trigger_id"], view=COMMENT_MODAL)
    )
    late = slack.block_actions(ann, posted, "Reject")
    now[0] += 3.5
    expired = slack_error(
        lambda: web_client.views_open(trigger_id=late["trigger_id"], view=COMMENT_MODAL)
    )

    assert opened["view"]["callback_id"] == "reject"
    assert (again["error"], expired["error"]) == ("exchanged_trigger_id", "expired_trigger_id")
    assert [view.user for view in slack.views] == [ann]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"title": {"type": "plain_text", "text": "A title that is far too long"}},
            "/view/title/text",
        ),
        ({"submit": None}, "/view/submit"),
        ({"type": "home"}, "/view/type"),
        ({"private_metadata": "x" * 3001}, "/view/private_metadata"),
    ],
)
def test_slack_refuses_a_modal_it_would_not_show(slack, web_client, ann, posted, change, problem):
    view = {key: value for key, value in {**COMMENT_MODAL, **change}.items() if value is not None}
    click = slack.block_actions(ann, posted, "reject")

    response = slack_error(lambda: web_client.views_open(trigger_id=click["trigger_id"], view=view))

    assert response["error"] == "invalid_arguments"
    assert problem in response["response_metadata"]["messages"][0]


def test_views_update_replaces_the_modal_unless_it_changed_meanwhile(
    slack, web_client, ann, posted
):
    click = slack.block_actions(ann, posted, "Reject")
    opened = web_client.views_open(trigger_id=click["trigger_id"], view=COMMENT_MODAL)["view"]
    thanks = {**COMMENT_MODAL, "title": {"type": "plain_text", "text": "Thanks"}, "blocks": []}

    updated = web_client.views_update(view_id=opened["id"], hash=opened["hash"], view=thanks)
    stale = slack_error(
        lambda: web_client.views_update(view_id=opened["id"], hash=opened["hash"], view=thanks)
    )

    assert updated["view"]["title"]["text"] == "Thanks"
    assert stale["error"] == "hash_conflict"
    assert len(slack.views[0].versions) == 2


@pytest.mark.parametrize(("kind", "status"), [("error", 500), ("ratelimited", 429)])
def test_slack_fails_as_told_until_it_recovers(slack, web_client, ann, kind, status):
    slack.fail(kind, "chat.postMessage")

    response = slack_error(lambda: web_client.chat_postMessage(channel=ann.id, text="x"))
    other_methods_work = web_client.users_info(user=ann.id)["ok"]
    slack.recover()

    assert response.status_code == status
    assert response["error"] == {"error": "fatal_error", "ratelimited": "ratelimited"}[kind]
    assert (response.headers.get("Retry-After") == "30") is (kind == "ratelimited")
    assert other_methods_work
    assert web_client.chat_postMessage(channel=ann.id, text="x")["ok"]
    assert slack.messages and [method for method, _ in slack.calls].count("chat.postMessage") == 2


def test_a_click_is_signed_as_slack_signs_it(slack, ann, posted):
    request = signed_request(slack.block_actions(ann, posted, "Approve"), SIGNING_SECRET)

    assert SignatureVerifier(SIGNING_SECRET).is_valid_request(request.body, request.headers)
    assert request.content_type == "application/x-www-form-urlencoded"
    payload = json.loads(parse_qs(request.body.decode())["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == ann.id
    assert payload["trigger_id"] in slack.triggers
    assert (payload["actions"][0]["action_id"], payload["actions"][0]["value"]) == ("approve", "42")
    assert payload["container"]["message_ts"] == payload["message"]["ts"] == posted.ts
    assert payload["channel"]["id"] == payload["container"]["channel_id"] == ann.dm


@pytest.mark.parametrize(
    "tamper",
    [
        lambda request: (request.body.replace(b"approve", b"reject_"), request.headers),
        lambda request: (request.body, {**request.headers, "X-Slack-Signature": "v0=" + "0" * 64}),
        lambda request: (
            request.body,
            {**request.headers, "X-Slack-Request-Timestamp": "1700000000"},
        ),
    ],
    ids=["body", "signature", "timestamp"],
)
def test_a_tampered_click_fails_slacks_verification(slack, ann, posted, tamper):
    body, headers = tamper(
        signed_request(slack.block_actions(ann, posted, "Approve"), SIGNING_SECRET)
    )

    assert not SignatureVerifier(SIGNING_SECRET).is_valid_request(body, headers)


def test_an_old_click_or_another_apps_secret_fails_slacks_verification(slack, ann, posted):
    payload = slack.block_actions(ann, posted, "Approve")
    old = signed_request(payload, SIGNING_SECRET, time.time() - 301)
    fresh = signed_request(payload, SIGNING_SECRET)

    assert not SignatureVerifier(SIGNING_SECRET).is_valid_request(old.body, old.headers)
    assert not SignatureVerifier("another-apps-secret").is_valid_request(fresh.body, fresh.headers)


def test_a_submitted_modal_reports_every_input_as_slack_does(slack, web_client, ann, posted):
    click = slack.block_actions(ann, posted, "Reject")
    web_client.views_open(trigger_id=click["trigger_id"], view=COMMENT_MODAL)

    payload = slack.view_submission(ann, slack.views[0], {"comment": "Over budget"})

    assert payload["type"] == "view_submission"
    assert payload["user"]["id"] == ann.id
    assert payload["view"]["callback_id"] == "reject"
    assert payload["view"]["private_metadata"] == "approval-42"
    assert payload["view"]["state"]["values"] == {
        "comment": {"comment": {"type": "plain_text_input", "value": "Over budget"}},
        "cost_centre": {"choice": {"type": "static_select", "selected_option": None}},
    }
    chosen = slack.view_submission(ann, slack.views[0], {"cost_centre": "rnd"})
    assert (
        chosen["view"]["state"]["values"]["cost_centre"]["choice"]["selected_option"]["value"]
        == "rnd"
    )


def test_a_person_clicks_only_what_they_see(slack, web_client, ann, posted):
    bob = slack.add_user("bob@example.com")
    click = slack.block_actions(ann, posted, "Reject")
    web_client.views_open(trigger_id=click["trigger_id"], view=COMMENT_MODAL)

    with pytest.raises(ValueError, match="buttons 'Send back'"):
        slack.block_actions(ann, posted, "Send back")
    with pytest.raises(ValueError, match="another person"):
        slack.block_actions(bob, posted, "Approve")
    with pytest.raises(ValueError, match="no input block"):
        slack.view_submission(ann, slack.views[0], {"amount": "12"})
    with pytest.raises(ValueError, match="no option"):
        slack.view_submission(ann, slack.views[0], {"cost_centre": "marketing"})


# Google Chat


@pytest.fixture
def chat(metadata_server):
    server = google_chat.ChatServer(metadata_server).start()
    yield server
    server.stop()


@pytest.fixture
def chat_session():
    """The app's session: Application Default Credentials (the metadata stand-in) for chat.bot."""
    credentials, _project = google.auth.default(scopes=[google_chat.CHAT_SCOPE])
    return AuthorizedSession(credentials)


@pytest.fixture
def dm(chat):
    return chat.install_for("ann@example.com", "Ann Smith")


def decision_card(approval_id: str = "42") -> dict:
    def button(label: str, function: str, **extra) -> dict:
        parameters = [{"key": "approval", "value": approval_id}]
        return {
            "text": label,
            "onClick": {"action": {"function": function, "parameters": parameters, **extra}},
        }

    widgets = [
        {"textParagraph": {"text": "<b>Team offsite</b>: 800.00 EUR"}},
        {
            "buttonList": {
                "buttons": [
                    button("Approve", "approve"),
                    button("Reject", "reject", interaction="OPEN_DIALOG"),
                    {
                        "text": "Open",
                        "onClick": {"openLink": {"url": "https://approver.example/a/42"}},
                    },
                ]
            }
        },
    ]
    card = {"header": {"title": "Approval requested"}, "sections": [{"widgets": widgets}]}
    return {
        "text": "Team offsite",
        "cardsV2": [{"cardId": f"approval-{approval_id}", "card": card}],
    }


COMMENT_DIALOG = {
    "actionResponse": {
        "type": "DIALOG",
        "dialogAction": {
            "dialog": {
                "body": {
                    "sections": [
                        {
                            "widgets": [
                                {"textInput": {"name": "comment", "label": "Comment"}},
                                {
                                    "dateTimePicker": {
                                        "name": "due",
                                        "label": "Due",
                                        "type": "DATE_ONLY",
                                    }
                                },
                                {
                                    "buttonList": {
                                        "buttons": [
                                            {
                                                "text": "Reject",
                                                "onClick": {
                                                    "action": {
                                                        "function": "submit_rejection",
                                                        "parameters": [
                                                            {"key": "approval", "value": "42"}
                                                        ],
                                                    }
                                                },
                                            }
                                        ]
                                    }
                                },
                            ]
                        }
                    ]
                }
            }
        },
    }
}


def messages_url(chat, space) -> str:
    return f"{chat.api_url}v1/{space.name}/messages"


def test_chat_api_creates_updates_and_reads_a_card_as_the_app(chat, chat_session, dm):
    created = chat_session.post(messages_url(chat, dm), json=decision_card())
    name = created.json()["name"]
    updated = chat_session.patch(
        f"{chat.api_url}v1/{name}",
        params={"updateMask": "text,cardsV2"},
        json={"text": "Approved by Ann"},
    )
    read = chat_session.get(f"{chat.api_url}v1/{name}")

    assert created.status_code == updated.status_code == read.status_code == 200
    assert name.startswith(f"{dm.name}/messages/")
    assert created.json()["sender"]["type"] == "BOT"
    assert read.json()["text"] == "Approved by Ann"
    assert "cardsV2" not in read.json()  # in the mask and not in the body: cleared
    [message] = chat.messages_in(dm)
    assert message.versions[0] == decision_card()
    assert message.text == "Approved by Ann"


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Bearer not-issued-by-the-metadata-server", 401), ("cloud-platform", 403)],
)
def test_chat_api_wants_an_issued_token_with_the_chat_bot_scope(chat, dm, authorization, status):
    if authorization == "cloud-platform":
        credentials, _project = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
        answered = AuthorizedSession(credentials).post(messages_url(chat, dm), json={"text": "x"})
    else:
        headers = {"Authorization": authorization} if authorization else {}
        answered = requests.post(
            messages_url(chat, dm), json={"text": "x"}, headers=headers, timeout=5
        )

    assert answered.status_code == status
    assert (
        answered.json()["error"]["status"]
        == {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}[status]
    )
    assert chat.messages == []


def with_widget(widget: dict) -> dict:
    return {"cardsV2": [{"cardId": "c", "card": {"sections": [{"widgets": [widget]}]}}]}


def with_button(button: dict) -> dict:
    return with_widget({"buttonList": {"buttons": [button]}})


NUMBER_PARAMETER = {"function": "approve", "parameters": [{"key": "approval", "value": 42}]}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "Message cannot be empty"),
        ({"text": "x", "cardz": []}, 'Unknown name "cardz"'),
        ({"cardsV2": [{"card": {"sections": []}}]}, "at least one section"),
        (with_widget({"button": {}}), "a widget is exactly one"),
        (with_button({"text": "Approve"}), "onClick: exactly one"),
        (with_button({"text": "Approve", "onClick": {"action": {}}}), "action.function"),
        (with_button({"text": "Approve", "onClick": {"action": NUMBER_PARAMETER}}), "parameters"),
    ],
)
def test_chat_api_refuses_messages_chat_would_refuse(chat, chat_session, dm, body, problem):
    answered = chat_session.post(messages_url(chat, dm), json=body)

    assert answered.status_code == 400
    assert answered.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert problem in answered.json()["error"]["message"]


def test_chat_api_refuses_spaces_the_app_is_not_in(chat, chat_session, dm):
    sent = chat_session.post(messages_url(chat, dm), json={"text": "x"}).json()
    chat.remove_from(dm)

    assert chat_session.post(messages_url(chat, dm), json={"text": "x"}).status_code == 404
    assert chat_session.get(f"{chat.api_url}v1/{sent['name']}").status_code == 404
    assert (
        chat_session.post(
            f"{chat.api_url}v1/spaces/UNKNOWN/messages", json={"text": "x"}
        ).status_code
        == 404
    )


@pytest.mark.parametrize(("mask", "status"), [(None, 400), ("sender", 400), ("cards_v2", 200)])
def test_chat_api_updates_only_through_a_mask_of_updatable_fields(
    chat, chat_session, dm, mask, status
):
    name = chat_session.post(messages_url(chat, dm), json=decision_card()).json()["name"]
    params = {"updateMask": mask} if mask else {}

    answered = chat_session.patch(
        f"{chat.api_url}v1/{name}", params=params, json=decision_card("43")
    )

    assert answered.status_code == status
    card_id = chat.messages[0].cards_v2[0]["cardId"]
    assert card_id == ("approval-43" if status == 200 else "approval-42")


def test_chat_api_takes_a_client_assigned_message_id_once(chat, chat_session, dm):
    params = {"messageId": "client-approval-42"}

    first = chat_session.post(messages_url(chat, dm), params=params, json={"text": "x"})
    again = chat_session.post(messages_url(chat, dm), params=params, json={"text": "x"})

    assert first.json()["name"] == f"{dm.name}/messages/client-approval-42"
    assert (again.status_code, again.json()["error"]["status"]) == (409, "ALREADY_EXISTS")


def test_chat_api_fails_as_told(chat, chat_session, dm):
    chat.outage = 503

    answered = chat_session.post(messages_url(chat, dm), json={"text": "x"})
    chat.outage = None

    assert (answered.status_code, answered.json()["error"]["status"]) == (503, "UNAVAILABLE")
    assert chat_session.post(messages_url(chat, dm), json={"text": "x"}).status_code == 200


def test_chat_events_name_the_direct_message_and_the_person(dm):
    added = google_chat.added_to_space(dm)
    removed = google_chat.removed_from_space(dm)
    said = google_chat.message(dm, "hello")

    assert (added["type"], removed["type"], said["type"]) == (
        "ADDED_TO_SPACE",
        "REMOVED_FROM_SPACE",
        "MESSAGE",
    )
    assert added["space"]["name"] == dm.name
    assert (added["space"]["type"], added["space"]["spaceType"]) == ("DM", "DIRECT_MESSAGE")
    assert added["user"]["email"] == "ann@example.com"
    assert said["message"]["argumentText"] == "hello"


def test_a_click_on_a_card_carries_the_buttons_function_and_parameters(chat, chat_session, dm):
    chat_session.post(messages_url(chat, dm), json=decision_card())
    [message] = chat.messages

    approve = google_chat.card_clicked(message, "Approve")
    reject = google_chat.card_clicked(message, "Reject")

    assert approve["type"] == "CARD_CLICKED"
    assert (
        approve["common"]["invokedFunction"] == approve["action"]["actionMethodName"] == "approve"
    )
    assert approve["common"]["parameters"] == {"approval": "42"}
    assert approve["action"]["parameters"] == [{"key": "approval", "value": "42"}]
    assert approve["message"]["name"] == message.name
    assert "isDialogEvent" not in approve
    assert (reject["isDialogEvent"], reject["dialogEventType"]) == (True, "REQUEST_DIALOG")
    with pytest.raises(ValueError, match="buttons 'Send back'"):
        google_chat.card_clicked(message, "Send back")


def test_a_submitted_dialog_carries_the_form_inputs(chat, chat_session, dm):
    chat_session.post(messages_url(chat, dm), json=decision_card())
    [message] = chat.messages

    submitted = google_chat.dialog_submitted(
        message,
        COMMENT_DIALOG,
        "Reject",
        {"comment": "Over budget", "due": datetime.date(2026, 12, 1)},
    )

    assert (submitted["isDialogEvent"], submitted["dialogEventType"]) == (True, "SUBMIT_DIALOG")
    assert submitted["common"]["invokedFunction"] == "submit_rejection"
    assert submitted["common"]["formInputs"] == {
        "comment": {"stringInputs": {"value": ["Over budget"]}},
        "due": {"dateInput": {"msSinceEpoch": "1796083200000"}},
    }
    assert (
        google_chat.dialog_submitted(message, COMMENT_DIALOG, "Reject", {"comment": ""})["common"][
            "formInputs"
        ]
        == {}
    )
    with pytest.raises(ValueError, match="no input"):
        google_chat.dialog_submitted(message, COMMENT_DIALOG, "Reject", {"amount": "12"})


def test_the_apps_own_answers_can_be_checked_like_the_api_checks_messages():
    assert google_chat.message_problems(decision_card()) == []
    assert (
        google_chat.card_problems(
            COMMENT_DIALOG["actionResponse"]["dialogAction"]["dialog"]["body"]
        )
        == []
    )


@pytest.fixture(scope="module")
def chat_key():
    return SigningKey("chat-system-key-1")


@pytest.fixture(scope="module")
def chat_certs(chat_key):
    server = google_chat.chat_certs_server(chat_key).start()
    yield server
    server.stop()


@pytest.fixture
def chat_tokens(signing_key, chat_key):
    return google_chat.ChatTokens(signing_key, chat_key)


def test_google_auth_verifies_chats_token_for_the_endpoint_url(chat_tokens, certs_server):
    token = chat_tokens.for_endpoint_url(EVENTS_URL)

    claims = id_token.verify_token(
        token, Request(), audience=EVENTS_URL, certs_url=certs_server.url
    )

    assert claims["iss"] == "https://accounts.google.com"
    assert (claims["email"], claims["email_verified"]) == (google_chat.CHAT_ISSUER, True)


def test_google_auth_verifies_chats_token_for_the_project_number(chat_tokens, chat_certs):
    token = chat_tokens.for_project_number(PROJECT_NUMBER)

    claims = id_token.verify_token(
        token, Request(), audience=PROJECT_NUMBER, certs_url=chat_certs.url
    )

    assert claims["iss"] == google_chat.CHAT_ISSUER
    assert chat_certs.url.endswith(
        "/service_accounts/v1/metadata/x509/chat@system.gserviceaccount.com"
    )


@pytest.mark.parametrize(
    ("form", "audience", "certs"),
    [
        ("endpoint", "https://elsewhere.example/events", "oidc"),
        ("endpoint", EVENTS_URL, "chat"),  # Google's OIDC key is not Chat's service account key
        ("project", "999999999999", "chat"),
        ("project", PROJECT_NUMBER, "oidc"),
    ],
)
def test_google_auth_refuses_chats_token_for_another_audience_or_signer(
    chat_tokens, certs_server, chat_certs, form, audience, certs
):
    token = (
        chat_tokens.for_endpoint_url(EVENTS_URL)
        if form == "endpoint"
        else chat_tokens.for_project_number(PROJECT_NUMBER)
    )
    certs_url = {"oidc": certs_server.url, "chat": chat_certs.url}[certs]

    with pytest.raises((ValueError, google_exceptions.GoogleAuthError)):
        id_token.verify_token(token, Request(), audience=audience, certs_url=certs_url)


def test_an_event_is_posted_as_json_with_the_bearer_token(chat_tokens, dm):
    token = chat_tokens.for_project_number(PROJECT_NUMBER)

    request = google_chat.event_request(google_chat.added_to_space(dm), token)

    assert request.content_type == "application/json"
    assert request.headers["Authorization"] == f"Bearer {token}"
    assert json.loads(request.body)["type"] == "ADDED_TO_SPACE"


def test_an_outgoing_request_is_sent_as_built(receiver, dm):
    request = google_chat.event_request(google_chat.added_to_space(dm), "a-token")

    request.send(receiver.callback_url("execution-1"))

    [arrived] = receiver.received
    assert arrived.headers["Authorization"] == "Bearer a-token"
    assert arrived.headers["User-Agent"] == "Google-Dynamite"
    assert arrived.body["space"]["name"] == dm.name


def test_the_demo_page_shows_a_card_as_chat_would_and_escapes_what_it_must(chat, chat_session, dm):
    card = decision_card()
    card["cardsV2"][0]["card"]["sections"][0]["widgets"][0] = {
        "textParagraph": {"text": "<b>Offsite</b> <script>alert(1)</script>"}
    }
    chat_session.post(messages_url(chat, dm), json=card)
    page = DemoPage(chat, "http://127.0.0.1:1/events", PROJECT_NUMBER, None)
    chat.page = lambda handler: respond(handler, page, {})

    shown = requests.get(chat.base_url + "/", timeout=5).text

    assert "<b>Offsite</b>" in shown
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert '<button name="button" value="Approve">Approve</button>' in shown
    assert '<a href="https://approver.example/a/42"' in shown
    assert requests.get(chat.base_url + "/nowhere", timeout=5).status_code == 404
