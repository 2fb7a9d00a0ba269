"""Google Chat's interaction events: `POST /integrations/google-chat/events`.

Chat (an app with an HTTP endpoint, its classic events) posts JSON with a bearer token, verified
before anything in the body is read (`identity.google.verify_chat_token`; 401 otherwise). The app
answers each event synchronously with a message, or a dialog:

* `ADDED_TO_SPACE` in a direct message: the person's space is kept (`ChatAccount`), so notices
  reach them; `REMOVED_FROM_SPACE` forgets it; `MESSAGE`: a short help text.
* `CARD_CLICKED` on a card's `decide` button: Approve decides at once and the card is updated in
  place; a button that needs a comment or inputs asks for the dialog (`google_chat_dialogs`),
  whose submit decides. Every decision goes through `deciding.decide`, the person being the app
  user with the event's `user.email`; a refusal is said in the chat, nothing is recorded.

Anything malformed is a 400 with a message. A repeated event is harmless: adding twice keeps one
account, a second click is refused as already decided.
"""

import json

from django.conf import settings
from django.http import JsonResponse
from django.urls import reverse
from django.utils import timezone

from approvals import emails
from approvals.identity import google
from approvals.integrations import deciding
from approvals.integrations import google_chat_dialogs as dialogs
from approvals.integrations.endpoints import post_only
from approvals.integrations.google_chat_dialogs import BadEvent, field
from approvals.models import MAX_EMAIL, Channel, ChatAccount, Notice
from approvals.notify import notices
from approvals.notify.channels.google_chat import DECIDE, card_message
from approvals.notify.chat import about

PLATFORM = "Google Chat"
MAX_BODY = 256 * 1024  # an event with a card in it is a few kB
HELP = (
    "I send you the approval requests you may decide, with buttons to decide them here. "
    "The requests waiting for you: {inbox}"
)
WELCOME = "Hello {name}: from now on, the approval requests you may decide come here."
ONLY_DIRECT = (
    "Approver writes to people in direct messages only: add it in a direct message to get "
    "your requests there."
)


@post_only(lambda message, status: _error(message, status))
def events(request):
    """Answer one Chat event (JSON), once its bearer token is Chat's."""
    if not settings.APPROVALS_GOOGLE_CHAT_AUDIENCE:
        return _error("Google Chat is not turned on.", 404)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _error("A bearer token from Google Chat is required.", 401)
    try:
        google.verify_chat_token(token.strip())
    except google.InvalidToken as invalid:
        return _error(str(invalid), 401)
    except google.CertsUnavailable:
        return _error("Google's signing certs could not be fetched; try again.", 503)
    try:
        event = _parsed(request)
        handler = HANDLERS.get(field(event, "type"))
        if handler is None:
            raise BadEvent("type: not an event this app answers.")
        return JsonResponse(handler(event))
    except BadEvent as bad:
        return _error(str(bad), 400)


def _email(event: dict) -> str:
    """The e-mail Chat gives for the person behind the event ("" when it gives none)."""
    return field(event, "user", "email", required=False, limit=MAX_EMAIL)


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _parsed(request) -> dict:
    # The announced length first (nothing read yet), then what came (a chunked body has none).
    announced = request.headers.get("Content-Length") or "0"
    if not announced.isdigit() or int(announced) > MAX_BODY or len(request.body) > MAX_BODY:
        raise BadEvent(f"The event is larger than {MAX_BODY} bytes.")
    try:
        event = json.loads(request.body)
    except (ValueError, RecursionError):
        raise BadEvent("The event is not JSON (or nested too deeply).") from None
    if not isinstance(event, dict):
        raise BadEvent("The event must be a JSON object.")
    return event


def _inbox_url() -> str:
    return settings.APPROVALS_BASE_URL + reverse("approvals:inbox")


def added(event: dict) -> dict:
    """The person added the app: keep their direct message, so notices reach them."""
    if not _in_direct_message(event):
        return {"text": ONLY_DIRECT}
    email_key = _learn(event)
    if not email_key:
        return {"text": deciding.NO_EMAIL.format(platform=PLATFORM)}
    name = field(event, "user", "displayName", required=False) or email_key
    said = [WELCOME.format(name=name)]
    person = deciding.account(_email(event), PLATFORM)
    if not isinstance(person, deciding.Reply):
        space = field(event, "space", "name")
        waiting = notices.tell_waiting(person, Channel.GOOGLE_CHAT, space)
        if waiting:
            many = f"{waiting} requests already wait" if waiting != 1 else "1 request already waits"
            said.append(f"{many} for you: they follow in a moment.")
    said.append(HELP.format(inbox=_inbox_url()))
    return {"text": " ".join(said)}


def removed(event: dict) -> dict:
    """The person removed the app: their space is no longer theirs to write to."""
    ChatAccount.objects.filter(
        channel=Channel.GOOGLE_CHAT, conversation=field(event, "space", "name")
    ).delete()
    return {}


def message(event: dict) -> dict:
    """The person wrote to the app: the help; and their space, in case the add was missed."""
    if _in_direct_message(event):
        _learn(event)
    return {"text": HELP.format(inbox=_inbox_url())}


def _in_direct_message(event: dict) -> bool:
    field(event, "space", "name")
    kind = (event["space"].get("spaceType"), event["space"].get("type"))
    return "DIRECT_MESSAGE" in kind or "DM" in kind


def _learn(event: dict) -> str:
    """Keep (or refresh) the person's direct message with the app; their mailbox, or "" when
    the event names no usable e-mail."""
    try:
        email_key = emails.canonical(_email(event))
    except emails.InvalidAddress:
        return ""
    ChatAccount.objects.update_or_create(
        channel=Channel.GOOGLE_CHAT,
        email_key=email_key,
        defaults={
            "user_id": field(event, "user", "name"),
            "conversation": field(event, "space", "name"),
            "learned_at": timezone.now(),
        },
    )
    return email_key


def clicked(event: dict) -> dict:
    """A button on a card, or a dialog's submit: decide, or open the dialog that asks first."""
    click = dialogs.Click.of(event)
    person = deciding.account(_email(event), PLATFORM)
    if isinstance(person, deciding.Reply):
        return dialogs.said(click, person.text)
    if click.dialog_type == "CANCEL_DIALOG":  # closed without submitting: nothing to do
        return dialogs.status("Nothing was decided.", "OK")
    if click.function == DECIDE and click.dialog_type == "REQUEST_DIALOG":
        return dialogs.opened(click, person)
    comment, values = dialogs.given(click, event) if click.function == dialogs.SUBMIT else ("", {})
    via = {"channel": Channel.GOOGLE_CHAT, "user": field(event, "user", "name")}
    reply = deciding.decide(click.approval_id, person, click.outcome, comment, values, via)
    if click.function == dialogs.SUBMIT:
        return dialogs.submitted(click, reply, comment, values)
    if reply.ok:
        updated = _card_now(event)
        if updated:
            return {"actionResponse": {"type": "UPDATE_MESSAGE"}, **updated}
    return dialogs.said(click, reply.text)


def _card_now(event: dict) -> dict | None:
    """The clicked card as it reads now, for the person who clicked; None if it is not ours."""
    name = field(event, "message", "name", required=False)
    try:
        email_key = emails.canonical(_email(event))
    except emails.InvalidAddress:
        return None
    sent = (
        Notice.objects.filter(
            channel=Channel.GOOGLE_CHAT,
            purpose__in=Notice.FOR_DECIDERS,
            email_key=email_key,
            ref__name=name,
        )
        .select_related("request")
        .first()
    )
    if not name or sent is None:
        return None
    now = Notice(
        request=sent.request,
        purpose=Notice.Purpose.UPDATE,
        channel=sent.channel,
        email_key=sent.email_key,
        on_behalf_of=sent.on_behalf_of,
        updates=sent,
    )
    return card_message(about(now), sent.request_id)


HANDLERS = {
    "ADDED_TO_SPACE": added,
    "REMOVED_FROM_SPACE": removed,
    "MESSAGE": message,
    "CARD_CLICKED": clicked,
}
