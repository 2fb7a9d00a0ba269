"""Google Chat: card messages in the person's direct-message space with the app, through the Chat
API called as the app (contract: "Chat channels").

The app learns a person's space only when they add it (`ADDED_TO_SPACE`, kept as a
`ChatAccount`); with app authentication the Chat API finds nobody by e-mail. A decider's notice is
a `cardsV2` card laid out from `approvals.notify.chat.about`; its buttons call the function
`decide` with the request and the outcome (`approvals.integrations.google_chat` answers them).
Each message is created with a client-assigned id derived from the notice, so a retry after a lost
answer finds the message it already posted instead of posting it twice.
"""

import hashlib
import html
from collections.abc import Sequence

from django.conf import settings
from django.template.loader import render_to_string

from approvals.identity import google
from approvals.models import Channel as Names
from approvals.models import ChatAccount, Notice
from approvals.notify import chat
from approvals.notify.channels.base import Channel, ChannelDown, Result
from approvals.notify.channels.email import delegation_context

DECIDE = "decide"  # the function every decision button calls
RETRIED = {401, 403, 408, 429}  # an access token refused, a rate limit: worth trying later


class GoogleChatChannel(Channel):
    name = Names.GOOGLE_CHAT

    def is_on(self) -> bool:
        return bool(settings.APPROVALS_GOOGLE_CHAT_AUDIENCE)

    def reaching(self, email_keys: set[str]) -> set[str]:
        # With app authentication the Chat API finds no one by e-mail: only the direct-message
        # space learned when the person added the app (ADDED_TO_SPACE) reaches them.
        known = ChatAccount.objects.filter(channel=self.name, email_key__in=email_keys)
        return set(known.values_list("email_key", flat=True))

    def send(self, notices: Sequence[Notice]) -> list[Result]:
        """Each notice as a message in the person's space; an update edits the message in place."""
        results = []
        for notice in notices:
            try:
                results.append(self._send_one(notice))
            except google.ChatApiUnreachable as unreachable:
                if not results:  # the first call failed: so will the others
                    raise ChannelDown(str(unreachable)) from None
                results.append(Result(False, str(unreachable)))
        return results

    def _send_one(self, notice: Notice) -> Result:
        if notice.purpose == Notice.Purpose.UPDATE:
            name = (notice.updates.ref or {}).get("name") if notice.updates else None
            if not isinstance(name, str):
                return Result(False, "The message to update was never sent.", retry=False)
            answer = google.chat_api(
                "PATCH", f"v1/{name}", params={"updateMask": "text,cardsV2"}, json=body(notice)
            )
            return _result(answer, name)
        account = ChatAccount.objects.filter(channel=self.name, email_key=notice.email_key).first()
        if account is None:
            return Result(False, "They have not added the Chat app.", retry=False)
        message_id = client_message_id(notice)
        answer = google.chat_api(
            "POST",
            f"v1/{account.conversation}/messages",
            params={"messageId": message_id},
            json=body(notice),
        )
        name = f"{account.conversation}/messages/{message_id}"
        if answer.status_code == 409:  # posted before, its answer lost: that message it is
            answer = google.chat_api("GET", f"v1/{name}")
        if answer.status_code == 404:
            # The app was removed from the space (the event may have been missed): forget it.
            ChatAccount.objects.filter(pk=account.pk, conversation=account.conversation).delete()
        return _result(answer, name)


def client_message_id(notice: Notice) -> str:
    """The message's client-assigned id: the same for every attempt at this notice."""
    digest = hashlib.sha256(f"{notice.pk}:{notice.created_at.isoformat()}".encode()).hexdigest()
    return f"client-n{notice.pk}-{digest[:24]}"


def _result(answer, name: str) -> Result:
    """The Result of a create, get or update call's answer."""
    if answer.status_code == 200:
        try:
            sent = answer.json().get("name") or name
        except (ValueError, AttributeError):
            sent = name
        return Result(True, ref={"name": sent})
    error = f"HTTP {answer.status_code} from the Chat API: {_message(answer)}"
    retry = answer.status_code in RETRIED or answer.status_code >= 500
    return Result(False, error[:300], retry=retry)


def _message(answer) -> str:
    """Google's error message (`{"error": {"message"}}`), or the start of the answer."""
    try:
        said = answer.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        said = answer.text[:200]
    return " ".join(str(said).split())


def body(notice: Notice) -> dict:
    """The message of a notice, as the Chat API takes it."""
    if notice.purpose in Notice.FOR_DECIDERS or notice.purpose == Notice.Purpose.UPDATE:
        return card_message(chat.about(notice), notice.request_id)
    if notice.purpose == Notice.Purpose.OUTCOME:
        return {"text": chat.requester_text(notice.request)}
    if notice.purpose == Notice.Purpose.DELEGATION:
        context = delegation_context(notice)
        return {"text": render_to_string("approvals/email/delegation.txt", context).strip()}
    raise ValueError(f"No Chat message for a {notice.purpose!r} notice.")


def card_message(summary: chat.Summary, approval_id) -> dict:
    """A request's card: the summary, the buttons `chat.buttons` offers, a link to the page."""
    widgets = [
        {"decoratedText": {"topLabel": html.escape(label), "text": html.escape(value)}}
        for label, value in summary.lines
    ]
    if summary.note:
        widgets.append({"textParagraph": {"text": f"<i>{html.escape(summary.note)}</i>"}})
    if summary.outcome_text:
        widgets.append({"textParagraph": {"text": f"<b>{html.escape(summary.outcome_text)}</b>"}})
    buttons = [_button(button, approval_id) for button in summary.buttons]
    buttons.append({"text": "Open in Approver", "onClick": {"openLink": {"url": summary.page_url}}})
    widgets.append({"buttonList": {"buttons": buttons}})
    card = {
        "header": {"title": summary.headline, "subtitle": summary.title},
        "sections": [{"widgets": widgets}],
    }
    return {
        "fallbackText": summary.fallback,
        "cardsV2": [{"cardId": f"approval-{approval_id}", "card": card}],
    }


def _button(button: chat.Button, approval_id) -> dict:
    parameters = [
        {"key": "approval", "value": str(approval_id)},
        {"key": "outcome", "value": str(button.outcome)},
    ]
    action = {"function": DECIDE, "parameters": parameters}
    if button.opens_form:
        action["interaction"] = "OPEN_DIALOG"
    shown = {"text": button.label, "onClick": {"action": action}}
    if button.style == "primary":
        shown["type"] = "FILLED"
    return shown
