"""Slack's interactivity requests: `POST /integrations/slack/interactions`.

Verified first: slack_sdk's `SignatureVerifier` with the signing secret (v0, the timestamp within
5 minutes), 401 otherwise; 404 while Slack is off. Then the form's `payload` JSON:

* `block_actions`, a button of a decider's message (`approvals.notify.slack_layout`): Approve
  decides at once when it needs nothing more; Reject, Send back, and Approve on a request asking
  for inputs open a modal (`slack_modal`), unless the person may not decide anyway;
* `view_submission`, that modal submitted: decide, or show what is wrong in the modal.

The person is the app user whose e-mail is the Slack profile's (`users.info`,
`deciding.account`); every decision is `deciding.decide` with `via` naming Slack and the user.
Afterwards the clicked message says who decided what at once; the other deciders' messages are
updated by the outbox. A refusal is an ephemeral message (or the modal's error), never silence.
Slack resends what it did not see answered within 3 s (`X-Slack-Retry-Num`): an interaction
handled once is answered again from the cache, not handled twice.
"""

import hashlib
import json
import logging
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from approvals import permissions
from approvals.integrations import deciding, slack_modal
from approvals.integrations.endpoints import post_only
from approvals.models import ApprovalRequest, Notice
from approvals.models import Channel as Names
from approvals.notify import chat, slack_layout
from approvals.notify.channels import ChannelDown, channel
from approvals.notify.channels.slack import SlackDown, call, slack_error

logger = logging.getLogger(__name__)

MAX_BODY = 200_000  # Slack's payloads carry the message or the modal: tens of kilobytes at most
SEEN_SECONDS = 600  # how long a handled interaction is remembered (Slack retries within minutes)
HANDLING = "handling"
RESPONSE_HOST = "hooks.slack.com"  # where Slack's response_urls point
SLACK_UNREACHABLE = "Slack did not answer Approver, so nothing was decided: try again shortly."
NO_FORM = "Slack did not open the form in time, so nothing was decided: click the button again."


class Malformed(Exception):
    """A payload Approver cannot act on: a 400 with this message."""


def text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


@post_only(lambda message, status: text(status, message))
def interactions(request):
    """Verify, then answer once per interaction (a retry is answered from the cache)."""
    if not channel(Names.SLACK).is_on():
        return text(404, "Slack is not turned on for this Approver.")
    if _length(request) > MAX_BODY:
        return text(400, "The request is too large.")
    body = request.body
    if not _signed(body, request.headers):
        return text(401, "The request is not signed with this app's Slack signing secret.")
    key = "slack-interaction:" + hashlib.sha256(body).hexdigest()
    if not cache.add(key, HANDLING, SEEN_SECONDS):
        seen = cache.get(key)
        if isinstance(seen, tuple):  # answered already: the same answer, nothing done again
            return HttpResponse(seen[1], status=seen[0], content_type=seen[2])
        return HttpResponse(status=200)  # still being handled by the first delivery
    try:
        response = _answer(body)
    except Malformed as problem:
        response = text(400, str(problem))
    except Exception:
        cache.delete(key)
        raise
    cache.set(key, (response.status_code, response.content, response["Content-Type"]), SEEN_SECONDS)
    return response


def _length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return MAX_BODY + 1


def _signed(body: bytes, headers) -> bool:
    """Whether Slack signed `body` with the signing secret, at most 5 minutes ago."""
    verifier = SignatureVerifier(settings.APPROVALS_SLACK_SIGNING_SECRET)
    try:
        return verifier.is_valid_request(body, dict(headers.items()))
    except (ValueError, TypeError, UnicodeDecodeError):  # a timestamp or signature that is no text
        return False


def _answer(body: bytes) -> HttpResponse:
    payload = _payload(body)
    kind = payload.get("type")
    if kind == "block_actions":
        return _clicked(payload)
    if kind == "view_submission":
        return _submitted(payload)
    raise Malformed("Approver answers block_actions and view_submission interactions only.")


def _payload(body: bytes) -> dict:
    """The form's one `payload` field, a JSON object."""
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
        [raw] = fields.get("payload") or [None]
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError, TypeError):
        raise Malformed("The body must be a form with one payload field of JSON.") from None
    if not isinstance(payload, dict):
        raise Malformed("The payload must be a JSON object.")
    return payload


def field(value, *path: str, required: bool = True) -> str:
    """The string at `path` in the payload; Malformed when it is missing or not a string."""
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    if isinstance(value, str) and value and len(value) <= 2000:
        return value
    if not required and value is None:
        return ""
    raise Malformed(f"The payload has no valid {'.'.join(path)}.")


def _approval(value: str) -> ApprovalRequest:
    approval_id = deciding.request_id(value)
    approval = ApprovalRequest.objects.filter(pk=approval_id).first() if approval_id else None
    if approval is None:
        raise Malformed(deciding.NO_SUCH_REQUEST)
    return approval


def _outcome(value: str) -> str:
    if value not in chat.LABELS:
        raise Malformed(f"Unknown action {value[:50]!r}.")
    return value


def _response_url(url: str) -> str:
    """The payload's response_url, when it is Slack's (or the stand-in's, beside its Web API):
    the app posts there, so it posts nowhere else."""
    if not url:
        return ""
    parts = urlsplit(url)
    slack_api = urlsplit(settings.APPROVALS_SLACK_API_URL)
    if (parts.scheme, parts.netloc) in {
        ("https", RESPONSE_HOST),
        (slack_api.scheme, slack_api.netloc),
    }:
        return url
    raise Malformed("The payload's response_url is not Slack's.")


def _person(slack_user: str):
    """The app user behind a Slack user (their profile's e-mail), or a Reply saying why not."""
    try:
        found = call("users.info", user=slack_user)
    except SlackApiError as refused:
        return deciding.Reply(False, f"Slack could not say who you are ({slack_error(refused)}).")
    except (SlackDown, ChannelDown):
        return deciding.Reply(False, SLACK_UNREACHABLE)
    profile = (found.get("user") or {}).get("profile") or {}
    email = profile.get("email") if isinstance(profile.get("email"), str) else ""
    return deciding.account(email, "Slack")


def _clicked(payload: dict) -> HttpResponse:
    """A button: decide at once, or open the modal, or say why not."""
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise Malformed("The payload has no actions.")
    outcome = _outcome(field(actions[0], "action_id"))
    approval = _approval(field(actions[0], "value"))
    slack_user = field(payload, "user", "id")
    message = {
        "channel": field(payload, "container", "channel_id", required=False),
        "ts": field(payload, "container", "message_ts", required=False),
        "response_url": _response_url(field(payload, "response_url", required=False)),
    }
    person = _person(slack_user)
    if isinstance(person, deciding.Reply):
        return _ephemeral(message, person.text)
    offered = {button.outcome: button for button in chat.buttons(approval)}
    if outcome in offered and offered[outcome].opens_form:
        refusal = permissions.decision_refusal(person, approval)
        if refusal:
            return _ephemeral(message, refusal)
        return _open_modal(payload, approval, outcome, message)
    via = {"channel": Names.SLACK, "user": slack_user}
    reply = deciding.decide(approval.pk, person, outcome, "", None, via)
    if not reply.ok:
        return _ephemeral(message, reply.text)
    _show_decided(approval.pk, message, reply)
    return HttpResponse(status=200)


def _open_modal(payload: dict, approval, outcome: str, message: dict) -> HttpResponse:
    trigger = field(payload, "trigger_id")
    try:
        call("views.open", trigger_id=trigger, view=slack_modal.view(approval, outcome, message))
    except (SlackApiError, SlackDown, ChannelDown) as failed:
        logger.warning("Slack did not open the decision modal: %s", failed)
        return _ephemeral(message, NO_FORM)
    return HttpResponse(status=200)


def _submitted(payload: dict) -> HttpResponse:
    """The modal submitted: decide, or name what is wrong in the modal."""
    view = payload.get("view")
    found = slack_modal.metadata(view) if isinstance(view, dict) else None
    if found is None:
        raise Malformed("The payload is not a submission of Approver's decision modal.")
    outcome = _outcome(found["outcome"])
    approval = _approval(found["request"])
    slack_user = field(payload, "user", "id")
    person = _person(slack_user)
    if isinstance(person, deciding.Reply):
        return _modal_errors({slack_modal.COMMENT: person.text})
    state = (view.get("state") or {}).get("values") if isinstance(view.get("state"), dict) else {}
    comment, values = slack_modal.submitted(approval, outcome, state or {})
    via = {"channel": Names.SLACK, "user": slack_user}
    reply = deciding.decide(approval.pk, person, outcome, comment, values, via)
    if not reply.ok:
        errors = slack_modal.errors(reply.errors) if reply.errors else {}
        return _modal_errors(errors or {slack_modal.COMMENT: reply.text[:300]})
    message = {key: found.get(key) for key in ("channel", "ts", "response_url")}
    _show_decided(approval.pk, message, reply)
    return JsonResponse({"response_action": "clear"})


def _modal_errors(errors: dict[str, str]) -> JsonResponse:
    return JsonResponse({"response_action": "errors", "errors": errors})


def _ephemeral(message: dict, said: str) -> HttpResponse:
    """Tell only the person who clicked, below the message (which stays as it is)."""
    _respond(message, text=said, response_type="ephemeral", replace_original=False)
    return HttpResponse(status=200)


def _respond(message: dict, **what) -> bool:
    """Post to the interaction's response_url; whether Slack took it."""
    url = message.get("response_url")
    if not isinstance(url, str) or not url:
        return False
    try:
        return WebhookClient(url, timeout=3).send(**what).status_code == 200
    except OSError as failed:  # the outbox's update will still come
        logger.warning("Slack's response_url did not take the answer: %s", type(failed).__name__)
        return False


def _show_decided(approval_id, message: dict, reply: deciding.Reply) -> None:
    """Make the clicked message say at once who decided what (the outbox updates it again,
    and everyone else's, at its next pass)."""
    sent = Notice.objects.filter(
        request_id=approval_id,
        channel=Names.SLACK,
        purpose__in=Notice.FOR_DECIDERS,
        state=Notice.State.SENT,
        ref__channel=message.get("channel") or "",
        ref__ts=message.get("ts") or "",
    ).first()
    if sent is None:
        _respond(message, text=reply.text, replace_original=True)
        return
    now = Notice(
        request=ApprovalRequest.objects.get(pk=approval_id),
        purpose=Notice.Purpose.UPDATE,
        updates=sent,
        email_key=sent.email_key,
        on_behalf_of=sent.on_behalf_of,
    )
    summary = chat.about(now)
    try:
        call(
            "chat.update",
            channel=sent.ref["channel"],
            ts=sent.ref["ts"],
            text=summary.fallback,
            blocks=slack_layout.decider_blocks(summary, approval_id),
        )
    except (SlackApiError, SlackDown, ChannelDown) as failed:
        logger.warning("Could not update the Slack message decided from: %s", failed)
