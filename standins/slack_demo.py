"""A browsable Slack for `make run`: the Slack stand-in's page at `/` shows each person's direct
messages from the app as Slack lays them out (sections, fields, context, buttons), and the modals
the app opened for them as forms. A button sends the real signed `block_actions` to the app's
interactivity URL (a confirmation first where the button asks for one); a modal's form sends
the `view_submission`, and the modal shows the errors the app answers with. What the app said
through a `response_url` (an ephemeral refusal) shows under the message it came from.

Plain HTML, a line of JavaScript for the confirmation; nothing here is deployed.
"""

import html
import json
import re

LINK_RE = re.compile(r"<([^|<>]+)\|([^<>]+)>")
BOLD_RE = re.compile(r"\*([^*\n]+)\*")
STYLE = """
body{font:15px/1.4 system-ui,sans-serif;margin:2rem;max-width:60rem;color:#1d1c1d}
section.person{border:1px solid #ddd;border-radius:8px;padding:1rem;margin:1rem 0}
.message{border-left:4px solid #611f69;padding:.3rem .8rem;margin:.8rem 0;white-space:pre-wrap}
.fields{display:grid;grid-template-columns:1fr 1fr;gap:.3rem}.context{color:#616061;font-size:13px}
button{margin:.2rem .4rem .2rem 0;padding:.3rem .9rem;border-radius:4px;border:1px solid #bbb;
background:#fff;cursor:pointer}button.primary{background:#007a5a;color:#fff}
button.danger{background:#e01e5a;color:#fff}.ephemeral{color:#616061;font-style:italic}
.modal{background:#f8f8f8;border:2px solid #611f69;padding:1rem;margin:.8rem 0}
.error{color:#e01e5a}label{display:block;margin-top:.6rem;font-weight:600}
"""


def mrkdwn(text: str) -> str:
    """Slack's mrkdwn as HTML: its links and bold, every other character escaped."""
    parts, last = [], 0
    for link in LINK_RE.finditer(text):
        parts.append(_inline(text[last : link.start()]))
        url, label = html.unescape(link[1]), _inline(link[2])
        parts.append(f'<a href="{html.escape(url)}">{label}</a>')
        last = link.end()
    parts.append(_inline(text[last:]))
    return BOLD_RE.sub(r"<b>\1</b>", "".join(parts))  # bold may span a link


def _inline(text: str) -> str:
    return html.escape(html.unescape(text))


def _text(obj) -> str:
    if not isinstance(obj, dict):
        return ""
    return (
        mrkdwn(obj.get("text", ""))
        if obj.get("type") == "mrkdwn"
        else html.escape(obj.get("text", ""))
    )


def _button(user, message, element) -> str:
    confirm = element.get("confirm")
    check = ""
    if confirm:
        question = html.escape(json.dumps(html.unescape(confirm["text"]["text"]).replace("*", "")))
        check = f' onsubmit="return confirm({question})"'
    return (
        f'<form method="post" action="/demo/click" style="display:inline"{check}>'
        f'<input type="hidden" name="user" value="{user.id}">'
        f'<input type="hidden" name="ts" value="{message.ts}">'
        f'<input type="hidden" name="action" value="{html.escape(element["action_id"])}">'
        f'<button class="{html.escape(element.get("style", ""))}">{_text(element["text"])}</button>'
        "</form>"
    )


def message_html(user, message, ephemeral: list[str]) -> str:
    """One message as Slack shows it, with what the app told only this person below it."""
    shown = []
    for block in message.blocks or [
        {"type": "section", "text": {"type": "mrkdwn", "text": message.text or ""}}
    ]:
        kind = block["type"]
        if kind in ("section", "header"):
            shown.append(f"<div>{_text(block.get('text'))}</div>")
            if block.get("fields"):
                cells = "".join(f"<div>{_text(f)}</div>" for f in block["fields"])
                shown.append(f'<div class="fields">{cells}</div>')
        elif kind == "context":
            shown.append(
                f'<div class="context">{" ".join(_text(e) for e in block["elements"])}</div>'
            )
        elif kind == "actions":
            shown.append(
                "<div>" + "".join(_button(user, message, e) for e in block["elements"]) + "</div>"
            )
    said = "".join(
        f'<div class="ephemeral">Only visible to you: {html.escape(t)}</div>' for t in ephemeral
    )
    return f'<div class="message">{"".join(shown)}</div>{said}'


def _input_html(block: dict, error: str) -> str:
    element, name = block["element"], html.escape(block["block_id"])
    kind = element["type"]
    if kind == "plain_text_input" and element.get("multiline"):
        field = f'<textarea name="{name}" rows="3" cols="60"></textarea>'
    elif kind in ("plain_text_input", "number_input"):
        field = f'<input name="{name}">'
    elif kind == "datepicker":
        field = f'<input type="date" name="{name}">'
    elif kind == "static_select":
        options = "".join(
            f'<option value="{html.escape(o["value"])}">{_text(o["text"])}</option>'
            for o in element["options"]
        )
        field = f'<select name="{name}"><option value="">—</option>{options}</select>'
    else:  # checkboxes, radio buttons
        field = "".join(
            f'<input type="checkbox" name="{name}" value="{html.escape(o["value"])}"> '
            + _text(o["text"])
            for o in element["options"]
        )
    optional = " (optional)" if block.get("optional") else ""
    problem = f'<div class="error">{html.escape(error)}</div>' if error else ""
    return f"<label>{_text(block['label'])}{optional}<br>{field}</label>{problem}"


def modal_html(view, errors: dict) -> str:
    """An open modal as a form that sends its view_submission."""
    parts = []
    for block in view.view["blocks"]:
        if block["type"] == "input":
            parts.append(_input_html(block, errors.get(block["block_id"], "")))
        elif block["type"] == "section":
            parts.append(f"<div>{_text(block.get('text'))}</div>")
    submit = _text(view.view.get("submit")) or "Submit"
    return (
        '<form class="modal" method="post" action="/demo/submit">'
        f"<b>{_text(view.view['title'])}</b>"
        f'<input type="hidden" name="view" value="{view.id}">{"".join(parts)}'
        f'<p><button class="primary">{submit}</button></p></form>'
    )


def page(server) -> str:
    """Every person's direct messages and open modals."""
    people = []
    for user in server.users:
        told = server.ephemeral_by_ts()
        messages = "".join(
            message_html(user, m, told.get(m.ts, [])) for m in server.messages_to(user)
        )
        # Slack shows one modal at a time: the one opened last.
        open_views = [v for v in server.views if v.user == user and v.id not in server.closed_views]
        modals = "".join(modal_html(v, server.modal_errors.get(v.id, {})) for v in open_views[-1:])
        people.append(
            f'<section class="person"><h2>{html.escape(user.real_name)} '
            f"<small>{html.escape(user.email)}</small></h2>"
            f"{messages or '<p><i>No messages yet.</i></p>'}{modals}</section>"
        )
    add = (
        '<form method="post" action="/demo/people">Add a person to the workspace: '
        '<input name="email" placeholder="name@example.com"> <button>Add</button></form>'
    )
    target = html.escape(server.app_url or "(no --app-url: buttons cannot reach the app)")
    return (
        f"<!doctype html><title>Slack stand-in</title><style>{STYLE}</style>"
        f"<h1>Slack stand-in</h1><p>Direct messages from the app. Clicks go to {target}.</p>"
        f"{add}{''.join(people) or '<p>No people yet.</p>'}"
    )


def act(server, path: str, form: dict) -> None:
    """Do what a form of the page asks: add a person, click a button, submit a modal."""
    if path == "/demo/people" and form.get("email"):
        server.add_user(form["email"].strip())
    elif path == "/demo/click":
        user = server.user(form.get("user", ""))
        message = next((m for m in server.messages if m.ts == form.get("ts")), None)
        if user and message:
            server.deliver(server.block_actions(user, message, form.get("action", "")))
    elif path == "/demo/submit":
        view = next((v for v in server.views if v.id == form.get("view")), None)
        if view:
            _submit(server, view, form)


def _submit(server, view, form: dict) -> None:
    values = {}
    for block in view.view["blocks"]:
        if block["type"] != "input":
            continue
        given = form.get(block["block_id"])
        if block["element"]["type"] in ("checkboxes",):
            values[block["block_id"]] = [given] if given else []
        elif given:
            values[block["block_id"]] = given
    answer = server.deliver(server.view_submission(view.user, view, values))
    if isinstance(answer, dict) and answer.get("response_action") == "errors":
        server.modal_errors[view.id] = answer.get("errors", {})
    else:
        server.closed_views.add(view.id)
