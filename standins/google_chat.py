"""A local stand-in for the parts of the Google Chat API the app calls, and for Chat's events.

The API, at `ChatServer.api_url` (APPROVALS_GOOGLE_CHAT_API_URL): what google-auth's
`AuthorizedSession` sends as the app, with Application Default Credentials and the scope chat.bot,
to `v1/spaces/{space}/messages`: create (POST, with an optional `messageId=client-...`), update
(PATCH or PUT with `updateMask`) and get (GET). It checks what Google checks: a bearer token that
the metadata stand-in issued (`MetadataServer.scopes_of`) with the chat.bot scope (401, 403); that
the app is a member of the space (404); the message's JSON (field names, text or `cardsV2`, the
card's sections and widgets, buttons' `onClick.action.function` and string `parameters`; 400).
Errors come in Google's shape, `{"error": {"code", "message", "status"}}`. It records every
message with its versions, and can be told to fail (`outage`).

Events, Chat's classic interaction events (an app with an HTTP endpoint, not an add-on):
`added_to_space()`, `removed_from_space()`, `message()`, and `card_clicked()` and
`dialog_submitted()`, which find the button in the card or dialog the app made (a person can only
click what is there). `ChatTokens` signs Chat's bearer token in either audience form: the
endpoint URL (a Google OIDC ID token for chat@system.gserviceaccount.com, certs at
APPROVALS_OIDC_CERTS_URL) or the project number (a JWT issued and signed by
chat@system.gserviceaccount.com, certs served by `chat_certs_server()` at the x509 path);
`event_request()` puts an event and a token together as Chat posts them.
"""

import datetime
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from .google import CertsServer, MetadataServer, SigningKey, TokenMinter
from .http import Outgoing, QuietHandler, StandinServer, answer

CHAT_SCOPE = "https://www.googleapis.com/auth/chat.bot"
CHAT_ISSUER = "chat@system.gserviceaccount.com"
CHAT_CERTS_PATH = f"/service_accounts/v1/metadata/x509/{CHAT_ISSUER}"
APP_USER = {"name": "users/100000000000000000001", "displayName": "Approver", "type": "BOT"}
STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
MESSAGE_FIELDS = {
    "name", "sender", "createTime", "lastUpdateTime", "deleteTime", "text", "formattedText",
    "cards", "cardsV2", "annotations", "thread", "space", "fallbackText", "actionResponse",
    "argumentText", "slashCommand", "attachment", "matchedUrl", "threadReply",
    "clientAssignedMessageId", "emojiReactionSummaries", "privateMessageViewer",
    "deletionMetadata", "quotedMessageMetadata", "attachedGifs", "accessoryWidgets",
}  # fmt: skip
UPDATABLE = {
    "text": "text",
    "cards_v2": "cardsV2",
    "cardsV2": "cardsV2",
    "accessory_widgets": "accessoryWidgets",
    "accessoryWidgets": "accessoryWidgets",
    "attachment": "attachment",
}
WIDGETS = {
    "textParagraph", "image", "decoratedText", "buttonList", "textInput", "selectionInput",
    "dateTimePicker", "divider", "grid", "columns", "chipList", "carousel",
}  # fmt: skip
INPUT_WIDGETS = {"textInput", "selectionInput", "dateTimePicker"}
ON_CLICK = {"action", "openLink", "openDynamicLinkAction", "card", "overflowMenu"}
ACTION_FIELDS = {
    "function", "parameters", "loadIndicator", "persistValues", "interaction",
    "requiredWidgets", "allWidgetsAreRequired",
}  # fmt: skip
BUTTON_FIELDS = {"text", "icon", "color", "onClick", "disabled", "altText", "type"}

_serial = itertools.count(1)


def _now() -> str:
    return (
        datetime.datetime.now(datetime.UTC)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )


class ChatApiError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.body = {"error": {"code": code, "message": message, "status": STATUS[code]}}


@dataclass
class ChatUser:
    name: str
    email: str
    display_name: str

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "displayName": self.display_name,
            "avatarUrl": "",
            "email": self.email,
            "type": "HUMAN",
            "domainId": "example",
        }


@dataclass
class ChatSpace:
    """A direct message between one person and the app."""

    name: str
    user: ChatUser
    app_is_member: bool = True

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "type": "DM",
            "spaceType": "DIRECT_MESSAGE",
            "singleUserBotDm": True,
            "spaceThreadingState": "UNTHREADED_MESSAGES",
        }


@dataclass
class ChatMessage:
    name: str
    space: ChatSpace
    fields: dict  # the message's content as the app last set it: text, cardsV2, ...
    create_time: str
    versions: list[dict] = field(default_factory=list)  # the create's body, then each update's
    update_time: str | None = None

    @property
    def text(self) -> str | None:
        return self.fields.get("text")

    @property
    def cards_v2(self) -> list:
        return self.fields.get("cardsV2") or []

    def as_json(self) -> dict:
        body = {"name": self.name, "sender": APP_USER, "createTime": self.create_time}
        if self.update_time:
            body["lastUpdateTime"] = self.update_time
        thread = {"name": f"{self.space.name}/threads/{self.name.rsplit('/', 1)[1]}"}
        return {**body, **self.fields, "thread": thread, "space": self.space.as_json()}


class ChatServer(StandinServer):
    """The Chat API for one Chat app; access tokens are checked against `metadata`."""

    def __init__(self, metadata: MetadataServer, port: int = 0):
        super().__init__(_Handler, port)
        self.metadata = metadata
        self.page = None  # answers the paths outside the API (the demo page, make run)
        self.users: dict[str, ChatUser] = {}  # by e-mail, casefolded
        self.spaces: dict[str, ChatSpace] = {}
        self.messages: list[ChatMessage] = []
        self.outage: int | None = None  # an HTTP status (500, 503, 429) for every call, until None
        self.state = threading.RLock()

    @property
    def api_url(self) -> str:
        """The Chat API's root, as APPROVALS_GOOGLE_CHAT_API_URL names it."""
        return self.base_url + "/"

    def install_for(self, email: str, display_name: str | None = None) -> ChatSpace:
        """The person's direct message with the app: they added it (or an admin installed it)."""
        with self.state:
            user = self.users.get(email.casefold())
            if user is None:
                user = ChatUser(f"users/{10**20 + next(_serial)}", email, display_name or email)
                self.users[email.casefold()] = user
            space = next((s for s in self.spaces.values() if s.user == user), None)
            if space is None:
                space = ChatSpace(f"spaces/DM{next(_serial):09d}", user)
                self.spaces[space.name] = space
            space.app_is_member = True
            return space

    def remove_from(self, space: ChatSpace) -> None:
        """The person removed the app: it can no longer post in their direct message."""
        space.app_is_member = False

    def messages_in(self, space: ChatSpace) -> list[ChatMessage]:
        return [message for message in self.messages if message.space == space]

    def handle(self, verb: str, url: str, raw: bytes, authorization: str | None):
        """Answer one API call: (HTTP status, JSON body)."""
        try:
            if self.outage:
                raise ChatApiError(self.outage, "The service is currently unavailable.")
            self.authorize(authorization)
            parts = urlsplit(url)
            query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
            with self.state:
                return 200, self.route(verb, parts.path, query, raw)
        except ChatApiError as refusal:
            return refusal.code, refusal.body

    def authorize(self, authorization: str | None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        scopes = self.metadata.scopes_of(token.strip()) if scheme.lower() == "bearer" else None
        if scopes is None:
            raise ChatApiError(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
            )
        if CHAT_SCOPE not in scopes:
            raise ChatApiError(403, "Request had insufficient authentication scopes.")

    def route(self, verb: str, path: str, query: dict, raw: bytes) -> dict:
        created = re.fullmatch(r"/v1/(spaces/[^/]+)/messages", path)
        named = re.fullmatch(r"/v1/(spaces/[^/]+)/messages/([^/]+)", path)
        if created and verb == "POST":
            return self.create(self.space(created[1]), query, _body(raw))
        if named and verb in {"GET", "PATCH", "PUT"}:
            message = self.message(f"{named[1]}/messages/{named[2]}")
            if verb == "GET":
                return message.as_json()
            return self.update(message, query, _body(raw))
        raise ChatApiError(404, f"Method not found: {verb} {path}")

    def space(self, name: str) -> ChatSpace:
        space = self.spaces.get(name)
        if space is None or not space.app_is_member:
            raise ChatApiError(404, "Requested entity was not found.")
        return space

    def message(self, name: str) -> ChatMessage:
        found = next((message for message in self.messages if message.name == name), None)
        if found is None:
            raise ChatApiError(404, "Requested entity was not found.")
        self.space(found.space.name)
        return found

    def create(self, space: ChatSpace, query: dict, body: dict) -> dict:
        _refuse_problems(message_problems(body))
        message_id = query.get("messageId") or f"{next(_serial)}.{next(_serial)}"
        if "messageId" in query and not re.fullmatch(r"client-[a-z0-9-]{1,56}", message_id):
            raise ChatApiError(400, "messageId must start with client- (a-z, 0-9, -; 63 at most)")
        name = f"{space.name}/messages/{message_id}"
        if any(message.name == name for message in self.messages):
            raise ChatApiError(409, f"Message {name} already exists.")
        content = {key: body[key] for key in ("text", "cardsV2", "accessoryWidgets") if key in body}
        message = ChatMessage(name, space, content, _now(), [body])
        self.messages.append(message)
        return message.as_json()

    def update(self, message: ChatMessage, query: dict, body: dict) -> dict:
        paths = [path.strip() for path in query.get("updateMask", "").split(",") if path.strip()]
        if not paths:
            raise ChatApiError(400, "updateMask is required: the fields to update.")
        unknown = [path for path in paths if path not in UPDATABLE]
        if unknown:
            raise ChatApiError(400, f"Invalid field mask path(s): {', '.join(unknown)}")
        _refuse_problems(message_problems(body, must_have_content=False))
        content = dict(message.fields)
        for path in paths:
            content.pop(UPDATABLE[path], None)
            if UPDATABLE[path] in body:
                content[UPDATABLE[path]] = body[UPDATABLE[path]]
        _refuse_problems(message_problems(content))
        message.fields = content
        message.versions.append(body)
        message.update_time = _now()
        return message.as_json()


def _body(raw: bytes) -> dict:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise ChatApiError(400, "Invalid JSON payload received.") from None
    if not isinstance(body, dict):
        raise ChatApiError(400, "Invalid JSON payload received. Expected an object: 'message'.")
    return body


def _refuse_problems(problems: list[str]) -> None:
    if problems:
        raise ChatApiError(400, "; ".join(problems))


def _unknown(value: dict, allowed: set[str], where: str) -> list[str]:
    return [
        f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
        for key in value
        if key not in allowed
    ]


def _button_problems(button, where: str) -> list[str]:
    if not isinstance(button, dict):
        return [f"{where}: a button must be an object"]
    problems = _unknown(button, BUTTON_FIELDS, where)
    on_click = button.get("onClick")
    if not isinstance(on_click, dict) or len(on_click) != 1 or not set(on_click) <= ON_CLICK:
        return [*problems, f"{where}.onClick: exactly one of {sorted(ON_CLICK)}"]
    if "openLink" in on_click and not isinstance((on_click["openLink"] or {}).get("url"), str):
        problems.append(f"{where}.onClick.openLink.url: a string is required")
    if "action" in on_click:
        action = on_click["action"]
        if not isinstance(action, dict) or not isinstance(action.get("function"), str):
            return [*problems, f"{where}.onClick.action.function: a string is required"]
        problems += _unknown(action, ACTION_FIELDS, f"{where}.onClick.action")
        if not _parameters_ok(action.get("parameters", [])):
            problems.append(f"{where}.onClick.action.parameters: a list of {{key, value}} strings")
    return problems


def _parameters_ok(parameters) -> bool:
    """An action's parameters: a list of {"key": "...", "value": "..."}, both strings (Chat's
    ActionParameter; a number where a string belongs is refused, as proto's JSON parser does)."""
    return isinstance(parameters, list) and all(
        isinstance(parameter, dict)
        and set(parameter) == {"key", "value"}
        and all(isinstance(part, str) for part in parameter.values())
        for parameter in parameters
    )


def _widget_problems(widget, where: str) -> list[str]:
    kinds = set(widget) - {"horizontalAlignment"} if isinstance(widget, dict) else set()
    if len(kinds) != 1 or not kinds <= WIDGETS:
        return [f"{where}: a widget is exactly one of {sorted(WIDGETS)}"]
    kind = kinds.pop()
    content = widget[kind]
    if not isinstance(content, dict):
        return [f"{where}.{kind}: must be an object"]
    if kind == "buttonList":
        buttons = content.get("buttons")
        if not isinstance(buttons, list) or not buttons:
            return [f"{where}.buttonList.buttons: at least one button"]
        return [
            problem
            for index, each in enumerate(buttons)
            for problem in _button_problems(each, f"{where}.buttonList.buttons[{index}]")
        ]
    if kind == "decoratedText" and "button" in content:
        return _button_problems(content["button"], f"{where}.decoratedText.button")
    if kind == "textParagraph" and not isinstance(content.get("text"), str):
        return [f"{where}.textParagraph.text: a string is required"]
    if kind in INPUT_WIDGETS and not re.fullmatch(r"[A-Za-z0-9_-]+", str(content.get("name", ""))):
        return [f"{where}.{kind}.name: a name (letters, digits, _ and -) is required"]
    return []


def card_problems(card, where: str = "card") -> list[str]:
    """What Chat would refuse in a card v2 (a message's card, or a dialog's body)."""
    sections = card.get("sections") if isinstance(card, dict) else None
    if not isinstance(sections, list) or not sections:
        return [f"{where}.sections: at least one section is required"]
    problems = []
    for i, section in enumerate(sections):
        widgets = section.get("widgets") if isinstance(section, dict) else None
        if not isinstance(widgets, list):
            problems.append(f"{where}.sections[{i}].widgets: a list is required")
            continue
        for j, widget in enumerate(widgets):
            problems += _widget_problems(widget, f"{where}.sections[{i}].widgets[{j}]")
    return problems


def message_problems(message: dict, must_have_content: bool = True) -> list[str]:
    """What the Chat API would refuse in a message body (also for the app's synchronous answers
    to events: a new or updated message)."""
    problems = _unknown(message, MESSAGE_FIELDS, "message")
    if "text" in message and not isinstance(message["text"], str):
        problems.append("message.text: a string is required")
    cards = message.get("cardsV2", [])
    if not isinstance(cards, list):
        return [*problems, "message.cardsV2: a list is required"]
    for i, entry in enumerate(cards):
        where = f"message.cardsV2[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object")
            continue
        problems += _unknown(entry, {"cardId", "card"}, where)
        problems += card_problems(entry.get("card"), f"{where}.card")
    if must_have_content and not (message.get("text") or cards or message.get("accessoryWidgets")):
        problems.append("Message cannot be empty. Discarding empty message.")
    return problems


class _Handler(QuietHandler):
    server: ChatServer

    def respond(self):
        self.server.count(urlsplit(self.path).path)
        if self.server.page and not self.path.startswith("/v1/"):
            self.server.page(self)
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, body = self.server.handle(
            self.command, self.path, raw, self.headers.get("Authorization")
        )
        answer(self, status, body, {"Content-Type": "application/json; charset=UTF-8"})

    do_GET = do_POST = do_PATCH = do_PUT = respond


# Chat's events, and the tokens it signs them with.


def _event(event_type: str, space: ChatSpace, common: dict | None = None, **fields) -> dict:
    """An event from the person of the direct message `space`; `common` adds to the event's
    common object (the client's locale, host app, platform and time zone)."""
    client = {
        "userLocale": "en",
        "hostApp": "CHAT",
        "platform": "WEB",
        "timeZone": {"id": "Europe/Berlin", "offset": 3600000},
    }
    return {
        "type": event_type,
        "eventTime": _now(),
        "space": space.as_json(),
        "user": space.user.as_json(),
        **fields,
        "common": {**client, **(common or {})},
    }


def added_to_space(space: ChatSpace) -> dict:
    """The person added the app to a direct message (or an admin installed it for them)."""
    return _event("ADDED_TO_SPACE", space)


def removed_from_space(space: ChatSpace) -> dict:
    return _event("REMOVED_FROM_SPACE", space)


def message(space: ChatSpace, text: str) -> dict:
    """The person wrote `text` to the app in their direct message."""
    name = f"{space.name}/messages/{next(_serial)}.{next(_serial)}"
    sent = {
        "name": name,
        "sender": space.user.as_json(),
        "createTime": _now(),
        "text": text,
        "argumentText": text,
        "thread": {"name": f"{space.name}/threads/{name.rsplit('/', 1)[1]}"},
        "space": space.as_json(),
    }
    return _event("MESSAGE", space, message=sent)


def _buttons(tree) -> list[dict]:
    """Every clickable thing with an `onClick.action` in a card, dialog or any JSON around them."""
    if isinstance(tree, list):
        return [button for item in tree for button in _buttons(item)]
    if not isinstance(tree, dict):
        return []
    own = [tree] if isinstance(tree.get("onClick"), dict) and "action" in tree["onClick"] else []
    return own + [button for value in tree.values() for button in _buttons(value)]


def _action(tree, button: str) -> dict:
    """The action of the one button labelled `button` (or whose function is `button`)."""
    found = [
        each
        for each in _buttons(tree)
        if button in (each.get("text"), each["onClick"]["action"].get("function"))
    ]
    if len(found) != 1:
        raise ValueError(
            f"{len(found)} buttons {button!r} in {json.dumps(tree)[:200]}: a person cannot click it"
        )
    return found[0]["onClick"]["action"]


def _clicked(message: ChatMessage, action: dict, form: dict | None = None, **fields) -> dict:
    """CARD_CLICKED for `action`: its function and parameters both in the classic `action` and in
    `common` (where Chat also puts a dialog's `formInputs`)."""
    parameters = action.get("parameters", [])
    common = {
        "invokedFunction": action["function"],
        "parameters": {parameter["key"]: parameter["value"] for parameter in parameters},
        **({"formInputs": form} if form is not None else {}),
    }
    return _event(
        "CARD_CLICKED",
        message.space,
        common,
        message=message.as_json(),
        action={"actionMethodName": action["function"], "parameters": parameters},
        **fields,
    )


def card_clicked(message: ChatMessage, button: str) -> dict:
    """The person clicked `button` (its label, or its function) on the card of `message`; a
    button that opens a dialog (`interaction: OPEN_DIALOG`) asks for it (REQUEST_DIALOG)."""
    action = _action(message.fields, button)
    if action.get("interaction") == "OPEN_DIALOG":
        return _clicked(message, action, isDialogEvent=True, dialogEventType="REQUEST_DIALOG")
    return _clicked(message, action)


def _form_input(value) -> dict:
    if isinstance(value, datetime.date):
        midnight = datetime.datetime.combine(value, datetime.time(), datetime.UTC)
        return {"dateInput": {"msSinceEpoch": str(int(midnight.timestamp() * 1000))}}
    return {"stringInputs": {"value": value if isinstance(value, list) else [value]}}


def dialog_submitted(message: ChatMessage, dialog: dict, button: str, inputs: dict) -> dict:
    """The person filled in the dialog the app answered with (`dialog`: the app's JSON answer)
    with `inputs` (by input name: text, a list of chosen values, or a date) and clicked
    `button`. Inputs left empty are left out, as Chat leaves them out."""
    names = {
        widget[kind]["name"]
        for widget in _widgets(dialog)
        for kind in INPUT_WIDGETS & set(widget)
        if isinstance(widget[kind], dict)
    }
    unknown = set(inputs) - names
    if unknown:
        raise ValueError(f"the dialog has no input {sorted(unknown)}: a person cannot fill it in")
    form = {name: _form_input(value) for name, value in inputs.items() if value not in (None, "")}
    action = _action(dialog, button)
    return _clicked(message, action, form, isDialogEvent=True, dialogEventType="SUBMIT_DIALOG")


def _widgets(tree) -> list[dict]:
    if isinstance(tree, list):
        return [widget for item in tree for widget in _widgets(item)]
    if not isinstance(tree, dict):
        return []
    own = [tree] if set(tree) & INPUT_WIDGETS else []
    return own + [widget for value in tree.values() for widget in _widgets(value)]


class ChatTokens:
    """Signs the bearer token Chat sends with each event, in the audience form the Chat app is
    configured with, through google-auth's JWT encoder (`TokenMinter`)."""

    def __init__(self, oidc_key: SigningKey, chat_key: SigningKey):
        self.oidc_key = oidc_key  # Google's OIDC signer: its certs at APPROVALS_OIDC_CERTS_URL
        self.chat_key = chat_key  # chat@system.gserviceaccount.com's: certs at the x509 URL

    def for_endpoint_url(self, url: str, **overrides) -> str:
        """An OIDC ID token, audience the endpoint's URL, for chat@system.gserviceaccount.com."""
        return TokenMinter(self.oidc_key, url).token(**{"email": CHAT_ISSUER, **overrides})

    def for_project_number(self, number: str, **overrides) -> str:
        """A JWT issued by chat@system.gserviceaccount.com, audience the Cloud project number."""
        claims = {
            "iss": CHAT_ISSUER,
            "azp": None,
            "sub": None,
            "email": None,
            "email_verified": None,
        }
        return TokenMinter(self.chat_key, number).token(**{**claims, **overrides})


def chat_certs_server(chat_key: SigningKey) -> CertsServer:
    """chat@system.gserviceaccount.com's certs (APPROVALS_GOOGLE_CHAT_CERTS_URL), x509 as Google
    publishes a service account's; `.start()` it, its `url` is the setting."""
    return CertsServer([chat_key], path=CHAT_CERTS_PATH)


def event_request(event: dict, token: str) -> Outgoing:
    """The POST Chat sends to the app's endpoint: the event as JSON, the token as bearer."""
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
        "User-Agent": "Google-Dynamite",
    }
    return Outgoing(json.dumps(event).encode(), headers)


if __name__ == "__main__":  # the browsable stand-in for make run (standins.google_chat_demo)
    from standins.google_chat_demo import main

    main()
