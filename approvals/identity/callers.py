"""Who is calling the API: a workflow with a Google ID token, or a holder of the static API token.

With neither `APPROVALS_ALLOWED_INVOKERS` nor `APPROVALS_API_TOKEN` configured, nobody is let in.

Each invoker (its e-mail in canonical form, `approvals.emails`) is one caller, and every holder of
the static token is one caller, `api-token`; a request belongs to the caller that registered it
(`permissions.requests_of_caller`).
"""

import hmac
from dataclasses import dataclass

from django.conf import settings

from approvals import emails
from approvals.identity import google

API_TOKEN_CALLER = "api-token"  # noqa: S105 - a caller name for the audit log, not a secret


@dataclass(frozen=True)
class Caller:
    """An authenticated API caller; `name` goes to the audit log."""

    name: str


class CallerRefused(Exception):
    """The caller may not use the API. `status` is 401 (who are you?), 403 (not you) or 503."""

    def __init__(self, status: int, message: str, error_code: str = "invalid_token"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code


def authenticate(authorization_header: str) -> Caller:
    """Identify the caller from an `Authorization: Bearer ...` header, or raise CallerRefused."""
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


def _allowed_invokers() -> set[str]:
    """`APPROVALS_ALLOWED_INVOKERS` in canonical form (an entry without one allows nobody)."""
    allowed = set()
    for invoker in settings.APPROVALS_ALLOWED_INVOKERS:
        try:
            allowed.add(emails.canonical(invoker))
        except emails.InvalidAddress:
            continue
    return allowed
