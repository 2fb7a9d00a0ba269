"""Slack's Block Kit for what `approvals.notify.chat` says: a decider's message with its buttons,
the same message once decided, the requester's outcome and a delegate's notice.

Buttons carry the request's id as their `value` and the outcome as their `action_id`
(`approvals.integrations.slack` reads both back); Approve asks Slack for a confirmation first
when it decides at once.
"""

from django.conf import settings
from django.urls import reverse

from approvals import permissions, wire
from approvals.notify import chat

ACTIONS_BLOCK = "decide"
MAX_FIELD = 2000  # a section field's text (Slack refuses more)


def escaped(value: str) -> str:
    """Text for mrkdwn: Slack reads `&`, `<` and `>` as markup, so a title cannot make a link."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section(markdown: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": markdown[:3000]}}


def plain(value: str, limit: int = 75) -> dict:
    value = str(value)
    return {
        "type": "plain_text",
        "text": value if len(value) <= limit else value[: limit - 1] + "…",
    }


def decider_blocks(summary: chat.Summary, approval_id) -> list[dict]:
    """A decider's message: headline, title linked to its page, the summary lines, a delegate's
    note, then the buttons offered or, once decided, what was decided."""
    blocks = [
        section(f"{escaped(summary.headline)}\n*<{summary.page_url}|{escaped(summary.title)}>*"),
    ]
    if summary.lines:
        fields = [
            {"type": "mrkdwn", "text": f"*{escaped(label)}*\n{escaped(value)}"[:MAX_FIELD]}
            for label, value in summary.lines[:10]
        ]
        blocks.append({"type": "section", "fields": fields})
    if summary.note:
        blocks.append({"type": "context", "elements": [plain(summary.note, 3000)]})
    if summary.outcome_text:
        blocks.append(section(f"*{escaped(summary.outcome_text)}*"))
    elif summary.buttons:
        buttons = [_button(button, summary, approval_id) for button in summary.buttons]
        blocks.append({"type": "actions", "block_id": ACTIONS_BLOCK, "elements": buttons})
    return blocks


def _button(button: chat.Button, summary: chat.Summary, approval_id) -> dict:
    element = {
        "type": "button",
        "text": plain(button.label),
        "action_id": button.outcome,
        "value": str(approval_id),
    }
    if button.style:
        element["style"] = button.style
    if button.confirm:
        element["confirm"] = {
            "title": plain(f"{button.label}?", 100),
            "text": {"type": "mrkdwn", "text": f"{button.label} *{escaped(summary.title)}*?"},
            "confirm": plain(button.label),
            "deny": plain("Cancel"),
        }
    return element


def requester_blocks(approval) -> list[dict]:
    """The requester's message once their request closed, with a link to its page."""
    said = chat.requester_text(approval)
    return [section(escaped(said)), section(f"<{wire.page_url(approval)}|Open the request>")]


def delegation_text(delegation) -> str:
    """A new delegate's notice: whose requests they may decide, and when."""
    inbox = settings.APPROVALS_BASE_URL + reverse("approvals:inbox")
    return (
        f"{permissions.user_email(delegation.delegator)} named you their delegate from "
        f"{delegation.starts_at:%Y-%m-%d %H:%M} to {delegation.ends_at:%Y-%m-%d %H:%M} UTC: "
        f"the requests waiting for them appear in your inbox, {inbox}"
    )
