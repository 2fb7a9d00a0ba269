"""A browsable Google Chat for `make run`: the Chat stand-in's own page, at `/` on its server.

It shows each person's direct message with the app as Chat would (the app's cards and texts),
with buttons that do what Chat does: a card's button posts the real `CARD_CLICKED` event, with a
real signed bearer token, to the app's events URL; a dialog the app answers with becomes a form
whose submit posts `SUBMIT_DIALOG`; "Add the app" sends `ADDED_TO_SPACE`. The tokens' signing
certs are served here too (`/oauth2/v1/certs`, and chat@system.gserviceaccount.com's x509 path),
and a metadata stand-in runs beside it, so the app's Chat API calls have tokens to check.

    python -m standins.google_chat --port 8767 --metadata-port 8768 \\
        --app-url http://127.0.0.1:8000/integrations/google-chat/events --audience 123456789012

and run the app with APPROVALS_GOOGLE_CHAT_AUDIENCE=123456789012,
APPROVALS_GOOGLE_CHAT_CERTS_URL=http://127.0.0.1:8767/service_accounts/v1/metadata/x509/chat@system.gserviceaccount.com,
APPROVALS_GOOGLE_CHAT_API_URL=http://127.0.0.1:8767/, GCE_METADATA_HOST and GCE_METADATA_IP
127.0.0.1:8768, and CLOUDSDK_CONFIG an empty folder (so no gcloud credentials are found first).
"""

import argparse
import datetime
import html
import re
from urllib.parse import parse_qs

import requests

from . import google_chat as gc
from .google import CertsServer, MetadataServer, SigningKey
from .http import answer

ALLOWED_TAGS = re.compile(r"&lt;(/?(?:b|i|u|br)|font color=&quot;#[0-9a-fA-F]{6}&quot;|/font)&gt;")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
STYLE = (
    "body{font:15px system-ui,sans-serif;margin:2em;max-width:46em}"
    ".space{border:1px solid #ccc;border-radius:8px;padding:1em;margin:1em 0}"
    ".card{border:1px solid #dadce0;border-radius:8px;padding:.8em;margin:.6em 0;background:#fff}"
    ".text{white-space:pre-wrap;background:#f1f3f4;border-radius:8px;padding:.6em;margin:.6em 0}"
    ".label{color:#5f6368;font-size:.8em}.note{background:#fef7e0;padding:.6em}"
    "form{display:inline}button{margin:.2em}"
)


class DemoPage:
    """The page, and the events it sends as Chat to the app at `app_url`."""

    def __init__(self, chat: gc.ChatServer, app_url: str, audience: str, tokens: gc.ChatTokens):
        self.chat, self.app_url, self.audience, self.tokens = chat, app_url, audience, tokens
        self.dialogs: dict[str, dict] = {}  # the open dialog per message, as the app answered
        self.notes: list[str] = []  # what the app said outside the messages (a dialog's status)

    def token(self) -> str:
        if self.audience.isdigit():
            return self.tokens.for_project_number(self.audience)
        return self.tokens.for_endpoint_url(self.audience)

    def send(self, event: dict, message: gc.ChatMessage | None, space: gc.ChatSpace) -> None:
        """Post `event` to the app as Chat does, and do what its answer asks."""
        try:
            answered = gc.event_request(event, self.token()).send(self.app_url)
        except requests.RequestException as error:
            self.notes.append(f"The app could not be reached: {type(error).__name__}")
            return
        if answered.status_code != 200:
            self.notes.append(
                f"The app answered HTTP {answered.status_code}: {answered.text[:300]}"
            )
            return
        self.apply(answered.json() if answered.content else {}, message, space)

    def apply(self, reply: dict, message: gc.ChatMessage | None, space: gc.ChatSpace) -> None:
        action = reply.get("actionResponse") or {}
        dialog_action = action.get("dialogAction") or {}
        content = {k: reply[k] for k in ("text", "cardsV2") if k in reply}
        if message and "dialog" in dialog_action:
            self.dialogs[message.name] = reply
        elif "actionStatus" in dialog_action:
            if message:
                self.dialogs.pop(message.name, None)
            self.notes.append(dialog_action["actionStatus"].get("userFacingMessage", ""))
        elif action.get("type") == "UPDATE_MESSAGE" and message:
            message.fields = content
        elif content:
            with self.chat.state:
                name = f"{space.name}/messages/reply-{len(self.chat.messages) + 1}"
                self.chat.messages.append(gc.ChatMessage(name, space, content, gc._now()))

    def post(self, path: str, form: dict) -> None:
        if path == "/demo/add":
            space = self.chat.install_for(form.get("email", "").strip() or "anna@example.com")
            self.send(gc.added_to_space(space), None, space)
            return
        message = next((m for m in self.chat.messages if m.name == form.get("message")), None)
        if message is None:
            self.notes.append("No such message.")
            return
        try:
            if path == "/demo/click":
                event = gc.card_clicked(message, form.get("button", ""))
            else:
                inputs = {k[3:]: _typed(v) for k, v in form.items() if k.startswith("in.")}
                dialog = self.dialogs[message.name]
                event = gc.dialog_submitted(message, dialog, form.get("button", ""), inputs)
        except (KeyError, ValueError) as problem:
            self.notes.append(str(problem))
            return
        self.send(event, message, message.space)

    def render(self) -> str:
        notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in self.notes[-3:])
        spaces = "".join(self.space_html(space) for space in list(self.chat.spaces.values()))
        add = (
            '<form method="post" action="/demo/add"><input name="email" size="30" '
            'placeholder="anna@example.com"><button>Add the app</button></form>'
        )
        return (
            f"<!doctype html><title>Google Chat stand-in</title><style>{STYLE}</style>"
            f"<h1>Google Chat (stand-in)</h1><p>Events go to {html.escape(self.app_url)}.</p>"
            f"{add}{notes}{spaces}"
        )

    def space_html(self, space: gc.ChatSpace) -> str:
        removed = "" if space.app_is_member else " (app removed)"
        shown = "".join(self.message_html(m) for m in self.chat.messages_in(space))
        title = html.escape(f"{space.user.email}: direct message with Approver{removed}")
        return f'<div class="space"><h2>{title}</h2>{shown or "<p>No messages yet.</p>"}</div>'

    def message_html(self, message: gc.ChatMessage) -> str:
        parts = [f'<div class="text">{html.escape(message.text)}</div>'] if message.text else []
        parts += [_card_html(entry.get("card", {}), message.name) for entry in message.cards_v2]
        if message.name in self.dialogs:
            body = self.dialogs[message.name]["actionResponse"]["dialogAction"]["dialog"]["body"]
            parts.append(_card_html(body, message.name, dialog=True))
        return "".join(parts)


def _typed(value: str):
    """A form's value as Chat reports it: a date picker's as a date, the rest as text."""
    try:
        return datetime.date.fromisoformat(value) if DATE.fullmatch(value) else value
    except ValueError:
        return value


def _rich(text: str) -> str:
    """The few tags a card's text may use, the rest escaped."""
    return ALLOWED_TAGS.sub(lambda m: "<" + html.unescape(m.group(1)) + ">", html.escape(text))


def _card_html(card: dict, message: str, dialog: bool = False) -> str:
    header = card.get("header") or {}
    title, subtitle = html.escape(header.get("title", "")), html.escape(header.get("subtitle", ""))
    shown = [f"<b>{title}</b><br>{subtitle}"]
    for section in card.get("sections", []):
        shown += [_widget_html(widget, message, dialog) for widget in section.get("widgets", [])]
    body = "".join(shown)
    if dialog:
        return (
            f'<div class="card"><form method="post" action="/demo/submit">'
            f'<input type="hidden" name="message" value="{html.escape(message)}">'
            f"{body}</form></div>"
        )
    return f'<div class="card">{body}</div>'


def _widget_html(widget: dict, message: str, dialog: bool) -> str:
    if "textParagraph" in widget:
        return f"<p>{_rich(widget['textParagraph'].get('text', ''))}</p>"
    if "decoratedText" in widget:
        item = widget["decoratedText"]
        label = html.escape(item.get("topLabel", ""))
        return f'<div><span class="label">{label}</span><br>{_rich(item.get("text", ""))}</div>'
    if "buttonList" in widget:
        return (
            "<div>"
            + "".join(_button_html(b, message, dialog) for b in widget["buttonList"]["buttons"])
            + "</div>"
        )
    return _input_html(widget)


def _button_html(button: dict, message: str, dialog: bool) -> str:
    label = html.escape(button.get("text", ""))
    link = button["onClick"].get("openLink")
    if link:
        return f'<a href="{html.escape(link["url"])}" target="_blank">{label}</a> '
    if dialog:
        return f'<button name="button" value="{label}">{label}</button>'
    return (
        f'<form method="post" action="/demo/click"><input type="hidden" name="message" '
        f'value="{html.escape(message)}">'
        f'<button name="button" value="{label}">{label}</button></form>'
    )


def _input_html(widget: dict) -> str:
    kind = next(iter(set(widget) & gc.INPUT_WIDGETS), None)
    if kind is None:
        return ""
    spec = widget[kind]
    name, label = "in." + html.escape(spec["name"]), html.escape(spec.get("label", spec["name"]))
    if kind == "textInput":
        value = html.escape(spec.get("value", ""))
        box = f"<textarea name='{name}' rows=2 cols=50>{value}</textarea>"
        return f"<p><label>{label}<br>{box}</label></p>"
    if kind == "dateTimePicker":
        return f"<p><label>{label}<br><input type=date name='{name}'></label></p>"
    items = spec.get("items", [])
    if spec.get("type") == "CHECK_BOX":
        boxes = "".join(
            f"<label><input type=checkbox name='{name}' value='{html.escape(i['value'])}'"
            f"{' checked' if i.get('selected') else ''}> {html.escape(i['text'])}</label>"
            for i in items
        )
        return f"<p>{label}<br>{boxes}</p>"
    options = "".join(
        f"<option{' selected' if i.get('selected') else ''}>{html.escape(i['value'])}</option>"
        for i in items
    )
    select = f"<select name='{name}'><option></option>{options}</select>"
    return f"<p><label>{label}<br>{select}</label></p>"


def respond(handler, page: DemoPage, certs: dict[str, dict]) -> None:
    """Answer the page's own paths on the Chat stand-in's server."""
    path = handler.path.split("?")[0]
    if handler.command == "GET" and path in certs:
        answer(handler, 200, certs[path], {"Content-Type": "application/json"})
    elif handler.command == "GET" and path == "/":
        body = page.render().encode()
        answer(handler, 200, body, {"Content-Type": "text/html; charset=utf-8"})
    elif handler.command == "POST" and path in {"/demo/add", "/demo/click", "/demo/submit"}:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0)).decode()
        form = {key: values[-1] for key, values in parse_qs(raw).items()}
        page.post(path, form)
        handler.send_response(303)
        handler.send_header("Location", "/")
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    else:
        answer(handler, 404, b"not found")


def main(argv=None) -> None:
    """Serve the Chat API, its page and its certs, and a metadata stand-in, until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8767)  # beside the Slack stand-in's 8766
    parser.add_argument("--metadata-port", type=int, default=8768)
    parser.add_argument(
        "--app-url", default="http://127.0.0.1:8000/integrations/google-chat/events"
    )
    parser.add_argument("--audience", default="123456789012", help="project number or the URL")
    args = parser.parse_args(argv)
    oidc_key, chat_key = SigningKey("demo-oidc-key"), SigningKey("demo-chat-key")
    certs = {
        CertsServer.PATH: {oidc_key.key_id: oidc_key.cert_pem},
        gc.CHAT_CERTS_PATH: {chat_key.key_id: chat_key.cert_pem},
    }
    metadata = MetadataServer(port=args.metadata_port).start()
    chat = gc.ChatServer(metadata, port=args.port)
    page = DemoPage(chat, args.app_url, args.audience, gc.ChatTokens(oidc_key, chat_key))
    chat.page = lambda handler: respond(handler, page, certs)
    print(f"Google Chat stand-in: {chat.base_url}/ (the API at {chat.api_url})", flush=True)
    try:
        chat.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        chat.server_close()
        metadata.stop()
