"""E-mail: Django's mail backend (SMTP on Google Cloud through a relay, the console locally).

Every kind of notice has its templates in `templates/approvals/email/`: the deciders' mail with
its signed Approve and Reject links (`approvals.notify.links`), the requester's outcome mail and
a delegate's. A chat message's update after a decision has no e-mail form.
"""

from collections.abc import Sequence
from urllib.parse import quote_plus

from django.conf import settings
from django.core import mail
from django.template.loader import render_to_string
from django.urls import reverse

from approvals import permissions, wire
from approvals.models import Channel as Names
from approvals.models import Notice, Outcome
from approvals.notify import links, notices
from approvals.notify.channels.base import SENT, Channel, ChannelDown, Result

# The first words of the outcome mail's subject and body, per closing status.
HEADLINES = {
    "approved": ("Approved", "was approved"),
    "rejected": ("Rejected", "was rejected"),
    "changes_requested": ("Sent back", "was sent back to you for changes"),
    "expired": ("Expired", "expired before it was decided"),
    "cancelled": ("Cancelled", "was cancelled by its workflow"),
}


class EmailChannel(Channel):
    name = Names.EMAIL

    def is_on(self) -> bool:
        return True

    def reaching(self, email_keys: set[str]) -> set[str]:
        return {key for key in email_keys if key}

    def send(self, notices: Sequence[Notice]) -> list[Result]:
        """Each mail over one connection; a server that quotes a link back has it taken out."""
        tokens: list[str] = []  # the links' tokens, kept out of any error that is recorded
        results: list[Result] = []
        try:
            with mail.get_connection() as connection:
                for notice in notices:
                    try:
                        message(notice, tokens, connection).send()
                    except Exception as exc:  # noqa: BLE001 - one mail's failure is its result
                        results.append(Result(False, describe_failure(exc, tokens)))
                    else:
                        results.append(SENT)
        except Exception as exc:  # opening or closing the connection failed
            if len(results) < len(notices):
                raise ChannelDown(describe_failure(exc, tokens)) from exc
        return results


def message(notice: Notice, tokens: list[str], connection=None) -> mail.EmailMultiAlternatives:
    """The mail of one notice, from its purpose's templates."""
    if notice.purpose in Notice.FOR_DECIDERS:
        return compose("request", _request_context(notice, tokens), notice.email, connection)
    if notice.purpose == Notice.Purpose.OUTCOME:
        return compose("outcome", outcome_context(notice.request), notice.email, connection)
    if notice.purpose == Notice.Purpose.DELEGATION:
        return compose("delegation", delegation_context(notice), notice.email, connection)
    raise ValueError(f"No e-mail for a {notice.purpose!r} notice.")


def _request_context(notice: Notice, tokens: list[str]) -> dict:
    approval, person = notice.request, notice.user
    approve = links.decision_token(approval, person, Outcome.APPROVED)
    reject = links.decision_token(approval, person, Outcome.REJECTED)
    tokens.extend((approve, reject))
    return {
        "approval": approval,
        "purpose": notice.purpose,
        "person": person,
        "on_behalf_of": notice.on_behalf_of,
        "approve_url": links.link(approval, approve),
        "reject_url": links.link(approval, reject),
        "page_url": wire.page_url(approval),
        "handed": notices.handed(notice),
    }


def outcome_context(approval) -> dict:
    """What the requester's outcome mail says: the status, each decision, its inputs."""
    status = approval.effective_status
    headline, sentence = HEADLINES.get(status, (status.capitalize(), f"is {status}"))
    return {
        "approval": approval,
        "status": status,
        "headline": headline,
        "sentence": sentence,
        "decisions": [_decision_context(decision) for decision in approval.decisions.all()],
        "page_url": wire.page_url(approval),
    }


def _decision_context(decision) -> dict:
    """One decision as the mail shows it, its inputs as name, value pairs in the order given."""
    return {
        "decision": decision,
        "said": HEADLINES.get(decision.outcome, (decision.outcome,))[0],
        "inputs": [
            (name, "—" if value is None else value) for name, value in decision.inputs.items()
        ],
    }


def delegation_context(notice: Notice) -> dict:
    """What the delegate's notice says: who named them, when, and where to look."""
    delegation = notice.delegation
    return {
        "delegation": delegation,
        "delegator_email": permissions.user_email(delegation.delegator),
        "inbox_url": settings.APPROVALS_BASE_URL + reverse("approvals:inbox"),
        "delegations_url": settings.APPROVALS_BASE_URL + reverse("approvals:delegations"),
    }


def compose(name: str, context: dict, to: str, connection=None) -> mail.EmailMultiAlternatives:
    """A mail to one address from the templates `approvals/email/<name>_subject.txt`,
    `<name>.txt` and, where there is one, `<name>.html` (the text's HTML alternative)."""
    # One line, whatever the title holds: mail headers cannot carry line breaks.
    subject = " ".join(render_to_string(f"approvals/email/{name}_subject.txt", context).split())
    message = mail.EmailMultiAlternatives(
        subject,
        render_to_string(f"approvals/email/{name}.txt", context),
        to=[to.strip()],
        connection=connection,
        headers={"Auto-Submitted": "auto-generated"},
    )
    if name != "delegation":
        message.attach_alternative(
            render_to_string(f"approvals/email/{name}.html", context), "text/html"
        )
    return message


def describe_failure(exc: Exception, tokens: list[str]) -> str:
    """The failure in a line, without any link's token (a server may quote the message back)."""
    text = f"{type(exc).__name__}: {exc}"
    for token in tokens:
        text = text.replace(token, "[link]").replace(quote_plus(token), "[link]")
    return " ".join(text.split())[:300]
