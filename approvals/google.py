"""The only code that talks to google-auth.

Two jobs:

* `callback_session()`: one process-wide HTTP session for callbacks. With
  `APPROVALS_CALLBACK_AUTH=google` it is an `AuthorizedSession` over Application Default
  Credentials (on Cloud Run: the service account, through the metadata server), so the access token
  is fetched once and refreshed by google-auth shortly before it expires, instead of once per call.
* `verify_id_token()`: checks a caller's Google-signed OIDC ID token with google-auth (signature
  against Google's published certs, expiry with clock skew, audience), then the claims google-auth
  leaves to us: the issuer and a verified e-mail.
"""

import threading
from dataclasses import dataclass

import google.auth
import google.auth.exceptions
import requests
from django.conf import settings
from google.auth.transport.requests import AuthorizedSession
from google.auth.transport.requests import Request as GoogleAuthRequest
from google.oauth2 import id_token
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_ISSUERS = {"accounts.google.com", "https://accounts.google.com"}
CLOCK_SKEW_SECONDS = 10

_lock = threading.Lock()
_callback_session: requests.Session | None = None
_certs_session: requests.Session | None = None


def _with_connect_retries(session: requests.Session) -> requests.Session:
    # Retry only failures to connect: the request never left, so repeating it is safe even for
    # a POST. Anything later (a timeout, a 5xx) is the delivery outbox's to retry.
    retry = Retry(total=2, connect=2, read=0, status=0, other=0, backoff_factor=0.2)
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def callback_session() -> requests.Session:
    """The process-wide session that sends callbacks, built on first use."""
    global _callback_session
    with _lock:
        if _callback_session is None:
            if settings.APPROVALS_CALLBACK_AUTH == "none":
                session = requests.Session()
            else:
                credentials, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
                session = AuthorizedSession(credentials)
            _callback_session = _with_connect_retries(session)
        return _callback_session


def reset_sessions() -> None:
    """Forget the process-wide sessions (tests change settings between cases)."""
    global _callback_session, _certs_session
    with _lock:
        _callback_session = None
        _certs_session = None


class InvalidToken(Exception):
    """The ID token is not acceptable; the message says why, without the token."""


class CertsUnavailable(Exception):
    """Google's signing certs could not be fetched: a temporary failure on our side."""


@dataclass(frozen=True)
class IdTokenIdentity:
    email: str
    subject: str


def _certs_request() -> GoogleAuthRequest:
    global _certs_session
    with _lock:
        if _certs_session is None:
            _certs_session = _with_connect_retries(requests.Session())
        return GoogleAuthRequest(session=_certs_session)


def verify_id_token(token: str) -> IdTokenIdentity:
    """Verify a Google-signed ID token for our audience and return who it names.

    Raises InvalidToken when the token is unacceptable and CertsUnavailable when the certs could
    not be fetched.
    """
    try:
        claims = id_token.verify_token(
            token,
            _certs_request(),
            audience=settings.APPROVALS_OIDC_AUDIENCE,
            certs_url=settings.APPROVALS_OIDC_CERTS_URL,
            clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
        )
    except google.auth.exceptions.TransportError as error:
        raise CertsUnavailable(str(error)) from None
    except (ValueError, google.auth.exceptions.GoogleAuthError) as error:
        # google-auth raises ValueError (and its subclasses) for a bad signature, an expired
        # token, a wrong audience or a token that is not a JWT at all.
        raise InvalidToken(_describe(error)) from None
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise InvalidToken("The token was not issued by Google.")
    email = claims.get("email")
    if not isinstance(email, str) or not email:
        raise InvalidToken("The token carries no e-mail; request it with the e-mail claim.")
    if claims.get("email_verified") is not True:
        raise InvalidToken("The token's e-mail is not verified.")
    return IdTokenIdentity(email=email.lower(), subject=str(claims.get("sub", "")))


def _describe(error: Exception) -> str:
    message = str(error)
    lowered = message.lower()
    if "expired" in lowered:
        return "The token has expired."
    if "audience" in lowered:
        return "The token is for another audience."
    if "signature" in lowered or "could not verify" in lowered:
        return "The token's signature is not valid."
    if "too early" in lowered or "used too early" in lowered:
        return "The token is not valid yet."
    return "The token is not a valid Google ID token."
