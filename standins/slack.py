"""A local stand-in for the parts of Slack's Web API the app calls, and for Slack's requests to it.

It speaks what `slack_sdk.WebClient(token=..., base_url=server.api_url)` sends: `POST /api/<method>`
with a form-encoded body (`users.*`, `conversations.open`, `auth.test`) or a JSON one (`chat.*`,
`views.*`) and `Authorization: Bearer xoxb-...`, and it answers as Slack does: HTTP 200 with
`{"ok": true, ...}` or `{"ok": false, "error": "..."}`. Methods: `auth.test`,
`users.lookupByEmail`, `users.info`, `conversations.open`, `chat.postMessage`, `chat.update`,
`views.open`, `views.update`. It checks what Slack checks: the bot token (`not_authed`,
`invalid_auth`), the scope each method needs (`missing_scope` with `needed` and `provided`;
`users.info` leaves out `profile.email` without `users:read.email`), the required arguments, the
Block Kit JSON (`standins.blockkit`), and trigger ids (issued here with each interaction, good once,
for 3 seconds). A direct message goes to a user id (`U...`) or their channel (`D...`);
`chat.update` wants the channel id that `chat.postMessage` answered. It records the workspace's
users, every call, the messages and the modals, and can be told to fail (`fail`).

The other direction: `SlackServer.block_actions()` and `.view_submission()` build the payloads
Slack posts to the app's interactivity URL, from the messages and modals the app made (a person
can only click a button that is there); `signed_request()` form-encodes one (`payload=<json>`)
and signs it (v0) with slack_sdk's own `SignatureVerifier`.
"""

import argparse
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

from slack_sdk.signature import SignatureVerifier

from . import blockkit, slack_demo
from .http import Outgoing, QuietHandler, StandinServer, answer

# A test workspace's secrets: the app's settings name them in tests and make run.
BOT_TOKEN = "xoxb-approver-test-bot-token"  # noqa: S105
SIGNING_SECRET = "approver-test-signing-secret"  # noqa: S105
# The contract's bot scopes, and the one each method needs (None: any valid token will do).
BOT_SCOPES = ("chat:write", "users:read", "users:read.email", "im:write")
METHOD_SCOPES = {
    "auth.test": None,
    "users.lookupByEmail": "users:read.email",
    "users.info": "users:read",
    "conversations.open": "im:write",
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "views.open": None,
    "views.update": None,
}
TEAM = {"id": "T0APPROVER", "domain": "approver-demo"}
APP_ID, BOT_ID, BOT_USER_ID = "A0APPROVER", "B0APPROVER", "U0APPROVER"
VERIFICATION_TOKEN = "deprecated-verification-token"  # noqa: S105 - in every payload, unused


class SlackError(Exception):
    """A method's `{"ok": false, "error": ...}` answer, with Slack's extra fields."""

    def __init__(self, error: str, **extra):
        super().__init__(error)
        self.body = {"ok": False, "error": error, **extra}


@dataclass
class SlackUser:
    id: str
    email: str
    name: str
    real_name: str

    @property
    def dm(self) -> str:
        """The app's direct-message channel with this person."""
        return "D" + self.id[1:]

    def as_json(self, with_email: bool) -> dict:
        profile = {"real_name": self.real_name, "display_name": self.name}
        if with_email:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": TEAM["id"],
            "name": self.name,
            "real_name": self.real_name,
            "deleted": False,
            "is_bot": False,
            "profile": profile,
        }

    def ref(self) -> dict:
        """The user as an interaction payload names them."""
        return {"id": self.id, "username": self.name, "name": self.name, "team_id": TEAM["id"]}


@dataclass
class SlackMessage:
    channel: str
    ts: str
    text: str | None
    blocks: list | None
    versions: list[dict] = field(default_factory=list)  # the arguments of the post, then updates

    def as_json(self) -> dict:
        body = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": self.ts}
        return {
            **body,
            "app_id": APP_ID,
            "team": TEAM["id"],
            "text": self.text or "",
            "blocks": self.blocks or [],
        }


@dataclass
class SlackView:
    id: str
    user: SlackUser
    view: dict  # as last opened or updated, with the ids Slack fills in
    hash: str
    versions: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            **self.view,
            "id": self.id,
            "team_id": TEAM["id"],
            "state": {"values": {}},
            "hash": self.hash,
            "clear_on_close": False,
            "notify_on_close": False,
            "previous_view_id": None,
            "root_view_id": self.id,
            "app_id": APP_ID,
            "app_installed_team_id": TEAM["id"],
            "bot_id": BOT_ID,
        }


class SlackServer(StandinServer):
    """Slack's Web API at `api_url`, for one workspace with one app installed."""

    def __init__(
        self,
        token: str = BOT_TOKEN,
        scopes=BOT_SCOPES,
        port: int = 0,
        app_url: str = "",
        signing_secret: str = SIGNING_SECRET,
    ):
        super().__init__(_Handler, port=port)
        self.token = token
        self.app_url = app_url  # the app's interactivity URL, where the demo page's clicks go
        self.signing_secret = signing_secret
        self.modal_errors: dict[str, dict] = {}  # the demo page's: what the app said per modal
        self.closed_views: set[str] = set()
        self.scopes = tuple(scopes)
        self.users: list[SlackUser] = []
        self.opened: set[str] = set()  # users whose direct message conversations.open opened
        self.messages: list[SlackMessage] = []
        self.views: list[SlackView] = []
        self.calls: list[tuple[str, dict]] = []  # every Web API call, answered or refused
        self.responses: list[tuple[str, object]] = []  # what the app posted to response_urls
        self.triggers: dict[str, tuple[float, SlackUser]] = {}
        self.used_triggers: set[str] = set()
        self.trigger_seconds = 3.0
        self.clock = time.monotonic  # tests move it to expire a trigger without waiting
        self.outage: tuple[str, frozenset[str] | None] | None = None
        self.retry_after = 30
        self.state = threading.RLock()
        self._serial = itertools.count(1)

    @property
    def api_url(self) -> str:
        """The `base_url` for slack_sdk's WebClient (and APPROVALS_SLACK_API_URL)."""
        return self.base_url + "/api/"

    def add_user(self, email: str, name: str | None = None, real_name: str | None = None):
        """A person in the workspace, whom users.lookupByEmail finds by `email`."""
        with self.state:
            user_id = f"U{next(self._serial):08d}"
            local = email.split("@")[0]
            real_name = real_name or local.replace(".", " ").title()
            user = SlackUser(user_id, email, name or local, real_name)
            self.users.append(user)
            return user

    def user(self, user_id: str) -> SlackUser | None:
        return next((user for user in self.users if user.id == user_id), None)

    def user_by_email(self, email: str) -> SlackUser | None:
        """As users.lookupByEmail finds them: the e-mail without regard to case."""
        wanted = email.casefold()
        return next((user for user in self.users if user.email.casefold() == wanted), None)

    def messages_to(self, user: SlackUser) -> list[SlackMessage]:
        return [message for message in self.messages if message.channel == user.dm]

    def ephemeral_by_ts(self) -> dict[str, list[str]]:
        """What the app told only the clicker through a response_url, by the message's ts."""
        told: dict[str, list[str]] = {}
        for path, body in self.responses:
            if isinstance(body, dict) and body.get("response_type") == "ephemeral":
                told.setdefault(path.split("/")[2], []).append(str(body.get("text", "")))
        return told

    def respond(self, path: str, body: dict) -> None:
        """A post to a response_url: recorded; `replace_original` replaces the message."""
        self.responses.append((path, body))
        message = next((m for m in self.messages if m.ts == path.split("/")[2]), None)
        if message and body.get("replace_original") in (True, "true"):
            message.text, message.blocks = body.get("text"), body.get("blocks")
            message.versions.append(body)

    def deliver(self, payload: dict):
        """Post a payload to the app's interactivity URL as Slack does, signed; the app's answer
        (its JSON, or None)."""
        answered = signed_request(payload, self.signing_secret).send(self.app_url)
        try:
            return answered.json()
        except ValueError:
            return None

    def fail(self, kind: str, *methods: str) -> None:
        """Fail every call (or the calls of `methods`) until `recover`: "error" answers HTTP 500
        as Slack does when it is down; "ratelimited" answers 429 with Retry-After."""
        if kind not in {"error", "ratelimited"}:
            raise ValueError(kind)
        self.outage = (kind, frozenset(methods) or None)

    def recover(self) -> None:
        self.outage = None

    def handle(self, method: str, args: dict, token: str | None):
        """Answer one Web API call: (HTTP status, body, headers)."""
        with self.state:
            self.calls.append((method, args))
        scopes = {"X-OAuth-Scopes": ",".join(self.scopes)}
        if self.outage and (self.outage[1] is None or method in self.outage[1]):
            if self.outage[0] == "ratelimited":
                return (
                    429,
                    {"ok": False, "error": "ratelimited"},
                    {"Retry-After": str(self.retry_after)},
                )
            return 500, {"ok": False, "error": "fatal_error"}, {}
        try:
            if method not in METHODS:
                raise SlackError("unknown_method", req_method=method)
            self.authorize(method, token)
            with self.state:
                return 200, {"ok": True, **METHODS[method](self, args)}, scopes
        except SlackError as refusal:
            return 200, refusal.body, scopes

    def authorize(self, method: str, token: str | None) -> None:
        if not token:
            raise SlackError("not_authed")
        if not secrets.compare_digest(token.encode(), self.token.encode()):
            raise SlackError("invalid_auth")
        needed = METHOD_SCOPES[method]
        if needed and needed not in self.scopes:
            raise SlackError("missing_scope", needed=needed, provided=",".join(self.scopes))

    def next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._serial):06d}"

    def issue_trigger(self, user: SlackUser) -> str:
        """A trigger id, as Slack puts in each interaction: views.open takes it once, within 3 s."""
        trigger = f"{next(self._serial)}.{int(time.time())}.{secrets.token_hex(16)}"
        with self.state:
            self.triggers[trigger] = (self.clock(), user)
        return trigger

    def use_trigger(self, trigger: str) -> SlackUser:
        issued = self.triggers.pop(trigger, None)
        if issued is None:
            used = trigger in self.used_triggers
            raise SlackError("exchanged_trigger_id" if used else "invalid_trigger_id")
        self.used_triggers.add(trigger)
        if self.clock() - issued[0] > self.trigger_seconds:
            raise SlackError("expired_trigger_id")
        return issued[1]

    def block_actions(self, user: SlackUser, message: SlackMessage, button: str) -> dict:
        """The payload Slack posts when `user` clicks `button` (its label, or its action_id) in
        `message` (after confirming, when the button asks for a confirmation)."""
        block, clicked = _button(message, button)
        if message.channel != user.dm:
            raise ValueError(f"{user.id} cannot see a direct message to another person")
        channel = message.channel
        return {
            "type": "block_actions",
            "user": user.ref(),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": channel,
                "is_ephemeral": False,
            },
            "trigger_id": self.issue_trigger(user),
            "team": TEAM,
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": "directmessage"},
            "message": message.as_json(),
            "state": {"values": {}},
            "response_url": f"{self.base_url}/actions/{message.ts}/{secrets.token_hex(8)}",
            "actions": [
                {
                    "type": "button",
                    "action_id": clicked["action_id"],
                    "block_id": block["block_id"],
                    "text": clicked["text"],
                    **({"value": clicked["value"]} if "value" in clicked else {}),
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }

    def view_submission(self, user: SlackUser, view: SlackView, values: dict) -> dict:
        """The payload Slack posts when `user` submits the modal `view`, its inputs filled in
        with `values` (by block_id: text, a date "YYYY-MM-DD", an option's value or a list)."""
        if view.user != user:
            raise ValueError(f"{user.id} cannot see a modal opened for {view.user.id}")
        state = blockkit.input_state(view.view["blocks"], values)
        return {
            "type": "view_submission",
            "team": TEAM,
            "user": user.ref(),
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "trigger_id": self.issue_trigger(user),
            "view": {**view.as_json(), "state": {"values": state}},
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }


def _button(message: SlackMessage, button: str) -> tuple[dict, dict]:
    """The block and the one button of `message` labelled `button` (or whose action_id it is)."""
    found = []
    for block in message.blocks or []:
        elements = block.get("elements", []) if block["type"] == "actions" else []
        for element in [*elements, block.get("accessory")]:
            if not isinstance(element, dict) or element.get("type") != "button":
                continue
            if button in (element.get("action_id"), element.get("text", {}).get("text")):
                found.append((block, element))
    if len(found) != 1:
        raise ValueError(f"{len(found)} buttons {button!r} in message {message.ts}: cannot click")
    return found[0]


def signed_request(payload: dict, signing_secret: str, timestamp: float | None = None) -> Outgoing:
    """The POST Slack sends to the interactivity URL: `payload=<json>`, form-encoded, signed with
    slack_sdk's own v0 signature over `v0:{timestamp}:{body}` (`timestamp`: now by default)."""
    body = urlencode({"payload": json.dumps(payload)})
    stamp = str(int(time.time() if timestamp is None else timestamp))
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=stamp, body=body)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
    return Outgoing(body.encode(), headers)


# The methods: each takes the server (its state locked) and the call's arguments, and returns the
# fields of the answer besides "ok", or raises SlackError.


def _required(args: dict, name: str, error: str = "invalid_arguments"):
    value = args.get(name)
    if value in (None, ""):
        raise SlackError(
            error, response_metadata={"messages": [f"[ERROR] missing required field: {name}"]}
        )
    return value


def _json_argument(args: dict, name: str, error: str):
    """Blocks and views come as JSON text in a form body, as JSON itself in a JSON body."""
    value = args.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(error) from None
    return value


def _auth_test(server: SlackServer, args: dict) -> dict:
    return {
        "url": f"https://{TEAM['domain']}.slack.com/",
        "team": "Approver demo",
        "user": "approver",
        "team_id": TEAM["id"],
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


def _lookup_by_email(server: SlackServer, args: dict) -> dict:
    user = server.user_by_email(_required(args, "email"))
    if user is None:
        raise SlackError("users_not_found")
    return {"user": user.as_json(with_email=True)}


def _users_info(server: SlackServer, args: dict) -> dict:
    user = server.user(_required(args, "user"))
    if user is None:
        raise SlackError("user_not_found")
    return {"user": user.as_json(with_email="users:read.email" in server.scopes)}


def _conversations_open(server: SlackServer, args: dict) -> dict:
    ids = _required(args, "users", "users_list_not_supplied").split(",")
    users = [server.user(user_id) for user_id in ids]
    if None in users:
        raise SlackError("user_not_found")
    if len(users) > 1:
        raise SlackError("not_implemented_in_standin", detail="group direct messages")
    user = users[0]
    if user.id in server.opened:
        return {"no_op": True, "already_open": True, "channel": {"id": user.dm}}
    server.opened.add(user.id)
    return {"channel": {"id": user.dm}}


def _message_content(args: dict, message: SlackMessage | None = None):
    """The text and blocks of a post, or of an update (which keeps what it does not replace)."""
    blocks = _json_argument(args, "blocks", "invalid_blocks_format")
    if blocks is not None:
        problems = blockkit.block_problems(blocks)
        if problems:
            messages = [f"[ERROR] {problem}" for problem in problems]
            raise SlackError(
                "invalid_blocks", errors=problems, response_metadata={"messages": messages}
            )
        blocks = blockkit.with_ids(blocks)
    text = args.get("text")
    if message is not None:
        text = message.text if "text" not in args else text
        blocks = message.blocks if "blocks" not in args else blocks
    if not text and not blocks and not args.get("attachments"):
        raise SlackError("no_text")
    return text, blocks


def _post_message(server: SlackServer, args: dict) -> dict:
    channel = args.get("channel") or ""
    user = server.user(channel) or next((u for u in server.users if u.dm == channel), None)
    if user is None:
        raise SlackError("channel_not_found")
    text, blocks = _message_content(args)
    message = SlackMessage(user.dm, server.next_ts(), text, blocks, [args])
    server.messages.append(message)
    return {"channel": message.channel, "ts": message.ts, "message": message.as_json()}


def _update(server: SlackServer, args: dict) -> dict:
    if not any(user.dm == args.get("channel") for user in server.users):
        raise SlackError("channel_not_found")
    found = [m for m in server.messages if (m.channel, m.ts) == (args["channel"], args.get("ts"))]
    if not found:
        raise SlackError("message_not_found")
    message = found[0]
    message.text, message.blocks = _message_content(args, message)
    message.versions.append(args)
    return {
        "channel": message.channel,
        "ts": message.ts,
        "text": message.text or "",
        "message": message.as_json(),
    }


def _view_argument(args: dict) -> dict:
    _required(args, "view")
    view = _json_argument(args, "view", "invalid_arguments")
    problems = blockkit.view_problems(view)
    if problems:
        raise SlackError(
            "invalid_arguments", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]}
        )
    return {**view, "blocks": blockkit.with_ids(view["blocks"])}


def _views_open(server: SlackServer, args: dict) -> dict:
    trigger = args.get("trigger_id") or _required(args, "interactivity_pointer")
    view = _view_argument(args)
    user = server.use_trigger(trigger)
    opened = SlackView(f"V{next(server._serial):08d}", user, view, secrets.token_hex(6), [view])
    server.views.append(opened)
    return {"view": opened.as_json()}


def _views_update(server: SlackServer, args: dict) -> dict:
    wanted = args.get("view_id") or _required(args, "external_id")
    found = [v for v in server.views if wanted in (v.id, v.view.get("external_id"))]
    if not found:
        raise SlackError("not_found")
    view = found[0]
    if args.get("hash") and args["hash"] != view.hash:
        raise SlackError("hash_conflict")
    view.view = _view_argument(args)
    view.hash = secrets.token_hex(6)
    view.versions.append(view.view)
    return {"view": view.as_json()}


METHODS = {
    "auth.test": _auth_test,
    "users.lookupByEmail": _lookup_by_email,
    "users.info": _users_info,
    "conversations.open": _conversations_open,
    "chat.postMessage": _post_message,
    "chat.update": _update,
    "views.open": _views_open,
    "views.update": _views_update,
}


class _Handler(QuietHandler):
    server: SlackServer

    def do_POST(self):
        path = urlsplit(self.path).path
        self.server.count(path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if path.startswith("/actions/"):
            with self.server.state:
                self.server.respond(path, _parsed(raw, self.headers.get("Content-Type")))
            answer(self, 200, {"ok": True}, {"Content-Type": "application/json"})
            return
        if path.startswith("/demo/"):
            form = _parsed(raw, "application/x-www-form-urlencoded")
            # Not under the state lock: the app calls this Web API back while it answers.
            slack_demo.act(self.server, path, form)
            answer(self, 303, b"", {"Location": "/"})
            return
        if not path.startswith("/api/"):
            answer(self, 404, b"not found")
            return
        args = dict(parse_qsl(urlsplit(self.path).query))
        try:
            args.update(_parsed(raw, self.headers.get("Content-Type")))
        except ValueError:
            answer(
                self,
                200,
                {"ok": False, "error": "invalid_json"},
                {"Content-Type": "application/json"},
            )
            return
        status, body, headers = self.server.handle(
            path.removeprefix("/api/"), args, self.token(args)
        )
        answer(self, status, body, {"Content-Type": "application/json; charset=utf-8", **headers})

    def do_GET(self):
        if urlsplit(self.path).path == "/":  # the demo page
            with self.server.state:
                page = slack_demo.page(self.server).encode()
            answer(self, 200, page, {"Content-Type": "text/html; charset=utf-8"})
            return
        self.do_POST()  # Slack takes a method's arguments in the query string too

    def token(self, args: dict) -> str | None:
        """The token from `Authorization: Bearer ...`, else (as Slack allows) a `token` argument."""
        scheme, _, credentials = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and credentials:
            return credentials.strip()
        return args.pop("token", None) or None


def _parsed(raw: bytes, content_type: str | None) -> dict:
    if not raw:
        return {}
    if (content_type or "").startswith("application/json"):
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise ValueError("not an object")
        return body
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def main(argv=None) -> None:
    """Serve the stand-in and its demo page until interrupted (make run)."""
    parser = argparse.ArgumentParser(description="The Slack stand-in and its demo page.")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument(
        "--app-url", default="http://127.0.0.1:8000/integrations/slack/interactions"
    )
    parser.add_argument("--user", action="append", default=[], help="a person's e-mail (repeat)")
    options = parser.parse_args(argv)
    server = SlackServer(port=options.port, app_url=options.app_url)
    for email in options.user:
        server.add_user(email)
    print(
        f"Slack stand-in: the demo page is {server.base_url}/ ; run the app with\n"
        f"  APPROVALS_SLACK_API_URL={server.api_url} APPROVALS_SLACK_BOT_TOKEN={BOT_TOKEN} "
        f"APPROVALS_SLACK_SIGNING_SECRET={SIGNING_SECRET}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
