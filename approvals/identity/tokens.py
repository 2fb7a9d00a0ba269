"""Personal access tokens: issue, check, revoke (contract: "Deciding through the API").

A token reads `apr_` + 12 random letters and digits (its public `prefix`, with `apr_`) + `_` + 32
random bytes from `secrets`, URL-safe. It is shown once, when it is issued; only the SHA-256
digest of the whole token is stored, and a token is found by that digest. A plain digest is
enough because the secret is random and long: slow password hashes are for guessable secrets.
The prefix names the token in lists, logs and the audit log without revealing it.
"""

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from approvals import text
from approvals.models import PersonalToken

logger = logging.getLogger(__name__)

MARK = "apr_"
PUBLIC_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: read aloud from a list
PUBLIC_LENGTH = 12  # 60 bits: prefixes never meet in practice (and are unique in the database)
SECRET_BYTES = 32
DEFAULT_DAYS = 90
MAX_DAYS = 366
MAX_NAME = 100
MAX_ACTIVE = 20  # per person: enough for every script, few enough to review on one page
# How stale `last_used_at` may get: a token used again within it is not written again.
LAST_USED_PRECISION = timedelta(minutes=1)


class TokenRefused(Exception):
    """The credential is no token the API accepts; the message says why, for its holder."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Issued:
    """A new token and its whole text, which is never shown or known again."""

    token: PersonalToken
    secret: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def looks_personal(credential: str) -> bool:
    """Is `credential` shaped like a personal token (and so never a Google ID token)?"""
    return credential.startswith(MARK)


def issue(user, name: str, days: int = DEFAULT_DAYS) -> Issued:
    """Make a token for `user`, valid for `days` days (1 to MAX_DAYS); raise ValueError if not."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"A token lasts 1 to {MAX_DAYS} days.")
    problem = text.one_line_problem(name)
    if problem:
        raise ValueError(problem)
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"A token's name is 1 to {MAX_NAME} characters.")
    if active_tokens_of(user).count() >= MAX_ACTIVE:
        raise ValueError(f"This account has {MAX_ACTIVE} tokens in force: revoke one first.")
    prefix = MARK + "".join(secrets.choice(PUBLIC_ALPHABET) for _ in range(PUBLIC_LENGTH))
    secret = f"{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    now = timezone.now()
    token = PersonalToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        digest=digest(secret),
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    logger.info(
        "Personal token %s issued to %s",
        prefix,
        user.get_username(),
        extra={"json_fields": {"token": prefix, "days": days}},
    )
    return Issued(token, secret)


def authenticate(credential: str) -> PersonalToken:
    """The token `credential` is, with its user, if the API accepts it now; else TokenRefused.

    Each use is noted in `last_used_at`, written at most once a minute per token."""
    token = PersonalToken.objects.select_related("user").filter(digest=digest(credential)).first()
    if token is None:
        raise TokenRefused("The token is not valid.")
    if token.state == "revoked":
        raise TokenRefused("The token was revoked.")
    if token.state == "expired":
        raise TokenRefused("The token has expired.")
    if not token.user.is_active:
        raise TokenRefused("The token's account is inactive.")
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at <= now - LAST_USED_PRECISION:
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_PRECISION)
        PersonalToken.objects.filter(stale, pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def tokens_of(user) -> QuerySet[PersonalToken]:
    """The person's own tokens, newest first (what their page lists)."""
    return PersonalToken.objects.filter(user=user)


def active_tokens_of(user) -> QuerySet[PersonalToken]:
    """The person's tokens the API accepts now (their account being active)."""
    return tokens_of(user).filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


def revoke(token_id, user) -> PersonalToken | None:
    """Revoke one of `user`'s tokens now; None when it was revoked already.

    Raises PersonalToken.DoesNotExist for an unknown id or another person's token."""
    with transaction.atomic():
        token = tokens_of(user).select_for_update().get(pk=token_id)
        if token.revoked_at is not None:
            return None
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    logger.info(
        "Personal token %s revoked by %s",
        token.prefix,
        user.get_username(),
        extra={"json_fields": {"token": token.prefix}},
    )
    return token
