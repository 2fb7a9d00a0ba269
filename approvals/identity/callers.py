"""Who is calling the API: a workflow with a Google ID token, a holder of the static API token,
or a person with a personal access token (`approvals.identity.tokens`).

Workflows register, read and cancel; people list what awaits them, read and decide
(`check_kind`). With neither `APPROVALS_ALLOWED_INVOKERS` nor `APPROVALS_API_TOKEN` configured,
no workflow is let in; personal tokens work either way.

Each invoker (its e-mail in canonical form, `approvals.emails`) is one caller, and every holder of
the static token is one caller, `api-token`; a request belongs to the caller that registered it
(`permissions.requests_of_caller`). A person reads what they may see as themselves.
"""

import hmac
from dataclasses import dataclass

from django.conf import settings

from approvals import emails
from approvals.identity import google, tokens

API_TOKEN_CALLER = "api-token"  # noqa: S105 - a caller name for the audit log, not a secret


# The kinds of caller, for `check_kind`.
WORKFLOW = "workflow"
PERSON = "person"
WORKFLOWS = frozenset({WORKFLOW})
PEOPLE = frozenset({PERSON})
EVERYONE = WORKFLOWS | PEOPLE
WRONG_KIND = {
    PERSON: "A personal token cannot register or cancel requests: that is the workflow's part.",
    WORKFLOW: "A workflow's credentials cannot decide or list what awaits a person: "
    "use a personal access token.",
}


@dataclass(frozen=True)
class Caller:
    """An authenticated API caller; `name` goes to the audit log. A person's caller carries
    their user and the token's public prefix; a workflow's has neither."""

    name: str
    user: object = None
    token_prefix: str = ""

    @property
    def kind(self) -> str:
        return PERSON if self.user is not None else WORKFLOW


class CallerRefused(Exception):
    """The caller may not use the API. `status` is 401 (who are you?), 403 (not you) or 503."""

    def __init__(self, status: int, message: str, error_code: str = "invalid_token"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code


def authenticate(authorization_header: str) -> Caller:
    """Identify the caller from an `Authorization: Bearer ...` header, or raise CallerRefused."""
    scheme, _, credential = authorization_header.strip().partition(" ")
    if scheme.lower() == "bearer" and tokens.looks_personal(credential.strip()):
        return _person(credential.strip())
    if not settings.APPROVALS_ALLOWED_INVOKERS and not settings.APPROVALS_API_TOKEN:
        raise CallerRefused(
            403,
            "The API accepts no caller: set APPROVALS_ALLOWED_INVOKERS or APPROVALS_API_TOKEN.",
            error_code="insufficient_scope",
        )
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    if not authorization_header.strip():
        raise CallerRefused(401, "Send credentials as 'Authorization: Bearer <token>'.", "")
    if scheme.lower() != "bearer" or not token:
        raise CallerRefused(
            401, "The Authorization header must be 'Bearer <token>'.", "invalid_request"
        )

    if settings.APPROVALS_API_TOKEN and hmac.compare_digest(
        token.encode(), settings.APPROVALS_API_TOKEN.encode()
    ):
        return Caller(name=API_TOKEN_CALLER)
    if not settings.APPROVALS_ALLOWED_INVOKERS:
        raise CallerRefused(401, "The token is not valid.")

    try:
        identity = google.verify_id_token(token)
    except google.CertsUnavailable:
        raise CallerRefused(
            503,
            "Google's signing certificates could not be fetched; try again.",
            "temporarily_unavailable",
        ) from None
    except google.InvalidToken as error:
        raise CallerRefused(401, str(error)) from None
    if identity.email not in _allowed_invokers():
        raise CallerRefused(
            403, f"{identity.email} is not allowed to call this API.", "insufficient_scope"
        )
    return Caller(name=identity.email)


def check_kind(caller: Caller, kinds: frozenset[str]) -> None:
    """Raise CallerRefused (403) unless `caller` is of one of `kinds` (WORKFLOWS, PEOPLE)."""
    if caller.kind not in kinds:
        raise CallerRefused(403, WRONG_KIND[caller.kind], "insufficient_scope")


def _person(credential: str) -> Caller:
    try:
        token = tokens.authenticate(credential)
    except tokens.TokenRefused as refused:
        raise CallerRefused(401, refused.message) from None
    # A name no workflow caller can have (it is no e-mail address), so `requests_of_caller` finds
    # nothing for a person even if a view forgot to tell the kinds apart.
    return Caller(name=f"personal token {token.prefix}", user=token.user, token_prefix=token.prefix)


def _allowed_invokers() -> set[str]:
    """`APPROVALS_ALLOWED_INVOKERS` in canonical form (an entry without one allows nobody)."""
    allowed = set()
    for invoker in settings.APPROVALS_ALLOWED_INVOKERS:
        try:
            allowed.add(emails.canonical(invoker))
        except emails.InvalidAddress:
            continue
    return allowed
