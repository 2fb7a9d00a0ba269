"""Single sign-on through Identity-Aware Proxy (IAP), on when `APPROVALS_IAP_AUDIENCE` is set.

IAP signs every request it lets through with a short-lived ES256 JWT in the
`x-goog-iap-jwt-assertion` header. Only that signed assertion is trusted: IAP's unsigned
`x-goog-authenticated-user-email` header can be forged by anyone who reaches the app without going
through IAP, so it is never read.

* `verify_assertion()`: the assertion's signature against IAP's public keys
  (`APPROVALS_IAP_CERTS_URL`, cached by `identity.google`), its expiry with 10 s of clock skew,
  the configured audience, the issuer `https://cloud.google.com/iap`, a subject and an e-mail.
* `IapBackend`: Django's authentication backend for `authenticate(request, iap_assertion=...)`.
  People are recognised by the assertion's subject (`IapIdentity`); a Django user is created on
  their first sign-in, with no permissions, and their e-mail is kept current.
* `IapSignInMiddleware`: signs the person named by a valid assertion in (Django's `login`, so the
  session follows), answers a plain 401 page for an invalid one, and leaves `/api/` (machines
  authenticate with ID tokens there) and static files alone.

Sessions opened with Django's sign-in form are left alone, also behind IAP: they are the
break-glass accounts (the first administrator adds people to Approvers with one).
"""

import logging
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.template import loader
from django.utils import timezone

from approvals import emails
from approvals.identity import google
from approvals.models import IapIdentity

logger = logging.getLogger(__name__)

ASSERTION_HEADER = "X-Goog-IAP-JWT-Assertion"
IAP_ISSUER = "https://cloud.google.com/iap"
BACKEND = "approvals.identity.iap.IapBackend"
EXEMPT_PREFIXES = ("/api/",)

# What the session remembers about the assertion it was opened with, so that a request whose
# assertion names the same person with the same e-mail needs no database query.
SESSION_SUBJECT = "iap_subject"
SESSION_EMAIL = "iap_email"
SESSION_CHECKED_AT = "iap_checked_at"
# How often a signed-in person's identity row is looked at again (last_seen_at, still active).
RECHECK_SECONDS = 600

RETRY_AFTER_SECONDS = 30
USERNAME_MAX = 150
USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")


class InvalidAssertion(Exception):
    """The IAP assertion is missing or not acceptable; the message says why, without it."""


class InactiveAccount(Exception):
    """The assertion is valid but names a person whose account was switched off."""


@dataclass(frozen=True)
class IapClaims:
    subject: str
    email: str


def verify_assertion(assertion: str | None) -> IapClaims:
    """Verify IAP's signed assertion and return whom it names.

    Raises InvalidAssertion when it is missing or unacceptable, and `google.CertsUnavailable` when
    IAP's public keys could not be fetched.
    """
    if not assertion:
        raise InvalidAssertion("The request carries no IAP assertion.")
    audience = settings.APPROVALS_IAP_AUDIENCE
    if not audience:
        raise InvalidAssertion("Sign-in through Identity-Aware Proxy is not configured.")
    try:
        claims = google.verify_signed_jwt(
            assertion,
            certs_url=settings.APPROVALS_IAP_CERTS_URL,
            audience=audience,
            issuers={IAP_ISSUER},
        )
    except google.InvalidToken as error:
        raise InvalidAssertion(str(error)) from None
    return _named(claims)


def _named(claims: dict) -> IapClaims:
    """Whom verified claims name, or InvalidAssertion when a subject or e-mail is not one the
    app can compare and store (whatever their types: they are what the token says)."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise InvalidAssertion("The token names no subject.")
    subject = subject.strip()
    if not _storable(subject, IapIdentity._meta.get_field("subject").max_length):
        raise InvalidAssertion("The token's subject is not a valid subject.")
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise InvalidAssertion("The token carries no e-mail.")
    try:
        emails.canonical(email)  # the form people are compared in
    except emails.InvalidAddress:
        raise InvalidAssertion("The token's e-mail is not an e-mail address.") from None
    email = email.strip().lower()
    if not _storable(email, IapIdentity._meta.get_field("email").max_length):
        raise InvalidAssertion("The token's e-mail is too long.")
    return IapClaims(subject=subject, email=email)


def _storable(text: str, max_length: int) -> bool:
    """Fits its column, and PostgreSQL can store it (no NUL, no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text and len(text) <= max_length


def user_for(claims: IapClaims):
    """The Django user of the person `claims` names: found by subject, e-mail brought up to date;
    created (no permissions, no usable password) on their first sign-in."""
    identity = IapIdentity.objects.select_related("user").filter(subject=claims.subject).first()
    if identity is None:
        return _create_identity(claims).user
    _bring_up_to_date(identity, claims)
    return identity.user


def _create_identity(claims: IapClaims) -> IapIdentity:
    User = get_user_model()
    base = USERNAME_UNSAFE.sub("_", claims.email)[:USERNAME_MAX]
    for attempt in range(1, 100):
        suffix = "" if attempt == 1 else f"-{attempt}"
        username = base[: USERNAME_MAX - len(suffix)] + suffix
        if User.objects.filter(username__iexact=username).exists():
            continue
        try:
            with transaction.atomic():
                user = User.objects.create_user(username=username, email=claims.email)
                identity = IapIdentity.objects.create(
                    user=user, subject=claims.subject, email=claims.email
                )
        except IntegrityError:
            # A concurrent first request of the same person won (the subject is unique), or
            # someone else took this username meanwhile: use theirs, or try the next name.
            existing = (
                IapIdentity.objects.select_related("user").filter(subject=claims.subject).first()
            )
            if existing is not None:
                return existing
            continue
        logger.info("Created user %s for %s on their first IAP sign-in", username, claims.email)
        return identity
    raise RuntimeError(f"No free username derived from {claims.email}")


def _bring_up_to_date(identity: IapIdentity, claims: IapClaims) -> None:
    user = identity.user
    if identity.email != claims.email or user.email.lower() != claims.email:
        logger.info(
            "E-mail of IAP user %s changed from %s to %s",
            user.get_username(),
            identity.email,
            claims.email,
        )
        identity.email = claims.email
        user.email = claims.email
        user.save(update_fields=["email"])
    identity.last_seen_at = timezone.now()
    identity.save(update_fields=["email", "last_seen_at"])


class IapBackend(ModelBackend):
    """Signs in the person named by a valid IAP assertion: `authenticate(request,
    iap_assertion=...)`. Permissions are ModelBackend's (groups such as Approvers).

    An unacceptable assertion raises InvalidAssertion, and a deactivated account InactiveAccount,
    instead of returning None: Django's `authenticate()` then sends no `user_login_failed`, whose
    credentials would carry the raw assertion (Django masks only names like "token"), and the
    middleware can tell the person why.
    """

    def authenticate(self, request, iap_assertion=None):
        if not iap_assertion or not settings.APPROVALS_IAP_AUDIENCE:
            return None
        user = user_for(verify_assertion(iap_assertion))
        if not self.user_can_authenticate(user):
            raise InactiveAccount(f"The account {user.get_username()} is deactivated.")
        return user

    def get_user(self, user_id):
        # Sessions opened through IAP end when IAP sign-in is switched off.
        if not settings.APPROVALS_IAP_AUDIENCE:
            return None
        return super().get_user(user_id)


class IapSignInMiddleware:
    """Signs people in from IAP's assertion; goes right after AuthenticationMiddleware."""

    def __init__(self, get_response):
        if BACKEND not in settings.AUTHENTICATION_BACKENDS:
            raise ImproperlyConfigured(f"{BACKEND} must be in AUTHENTICATION_BACKENDS.")
        self.get_response = get_response

    def __call__(self, request):
        refusal = self._sign_in(request)
        return refusal or self.get_response(request)

    def _sign_in(self, request) -> HttpResponse | None:
        if not settings.APPROVALS_IAP_AUDIENCE or _exempt(request.path_info):
            return None
        assertion = request.headers.get(ASSERTION_HEADER)
        if not assertion:
            # Not through IAP. A session IAP opened is good only alongside IAP's assertion; the
            # sign-in form's sessions (break-glass accounts) work as without IAP.
            if _opened_by_iap(request):
                auth.logout(request)
            return None
        try:
            claims = verify_assertion(assertion)
            if _opened_by_iap(request) and _remembered(request, claims):
                return None
            if request.user.is_authenticated and not _opened_by_iap(request):
                return None  # signed in with the sign-in form, behind IAP: a break-glass account
            user = auth.authenticate(request, iap_assertion=assertion)
        except (InvalidAssertion, InactiveAccount, google.CertsUnavailable) as error:
            return _refusal(request, error)
        if user is None:  # only when the backend is not asked at all; __init__ rules that out
            return None
        if request.user.is_authenticated and request.user.pk != user.pk:
            auth.logout(request)  # another person's assertion: that session ends here
        if request.user.is_authenticated and request.user.pk == user.pk:
            request.user = user  # the same person, e-mail brought up to date
        else:
            auth.login(request, user, backend=BACKEND)
        _remember(request, claims)
        return None


def _refusal(request, error: Exception) -> HttpResponse:
    """The page that says why the assertion signs nobody in; a session open until now ends,
    unless only IAP's keys are missing for a moment."""
    if isinstance(error, google.CertsUnavailable):
        logger.error("IAP's public keys are unavailable: %s", error)
        response = _page(
            503,
            "Sign-in unavailable for a moment",
            "Approver could not fetch Identity-Aware Proxy's public keys to confirm your sign-in.",
            "Try again in a moment.",
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(error, InactiveAccount):
        logger.warning("IAP sign-in refused: %s", error)
        page = (
            403,
            "Account switched off",
            "Your Approver account has been deactivated.",
            "If you need access, ask an administrator.",
        )
    else:
        logger.warning("IAP assertion refused on %s: %s", request.path_info, error)
        page = (
            401,
            "Sign-in not confirmed",
            "Approver could not confirm your sign-in through Identity-Aware Proxy, so it did not "
            "sign you in.",
            f"Reason: {error}",
        )
    if request.user.is_authenticated:
        auth.logout(request)
    return _page(*page)


def _exempt(path: str) -> bool:
    static = "/" + settings.STATIC_URL.lstrip("/")
    return path.startswith((*EXEMPT_PREFIXES, static))


def _opened_by_iap(request) -> bool:
    return (
        request.user.is_authenticated and request.session.get(auth.BACKEND_SESSION_KEY) == BACKEND
    )


def _remembered(request, claims: IapClaims) -> bool:
    session = request.session
    return (
        session.get(SESSION_SUBJECT) == claims.subject
        and session.get(SESSION_EMAIL) == claims.email
        and time.time() - session.get(SESSION_CHECKED_AT, 0) < RECHECK_SECONDS
    )


def _remember(request, claims: IapClaims) -> None:
    request.session[SESSION_SUBJECT] = claims.subject
    request.session[SESSION_EMAIL] = claims.email
    request.session[SESSION_CHECKED_AT] = time.time()


def _page(status: int, title: str, message: str, advice: str) -> HttpResponse:
    """A standalone page (rendered without the request: the person is not signed in)."""
    stylesheet = "/" + settings.STATIC_URL.lstrip("/") + "approvals/style.css"
    page = loader.render_to_string(
        "approvals/iap_refused.html",
        {"title": title, "stylesheet": stylesheet, "message": message, "advice": advice},
    )
    response = HttpResponse(page, status=status)
    response["Cache-Control"] = "no-store"
    return response
