"""The only code that talks to google-auth.

Three jobs:

* `callback_session()`: one process-wide HTTP session for callbacks. With
  `APPROVALS_CALLBACK_AUTH=google` it is an `AuthorizedSession` over Application Default
  Credentials (on Cloud Run: the service account, through the metadata server), so the access token
  is fetched once and refreshed by google-auth shortly before it expires, instead of once per call.
* `verify_id_token()`: checks a caller's Google-signed OIDC ID token with google-auth (signature
  against Google's published certs, expiry with clock skew, audience), then the claims google-auth
  leaves to us: the issuer and a verified e-mail. The certs are cached process-wide
  (`CertsCache`); `verify_signed_jwt()` serves other Google-signed tokens (IAP's) the same way.
* `chat_api()`: the Chat API called as the app (scope chat.bot), over one process-wide
  `AuthorizedSession`; `verify_chat_token()` checks the bearer token Google Chat sends with events.
* `project_id()`: the Google Cloud project the app runs in, for the trace field of its log lines.
"""

import math
import os
import re
import threading
import time
from dataclasses import dataclass

import google.auth
import google.auth.exceptions
import requests
from django.conf import settings
from google.auth import jwt
from google.auth.transport.requests import AuthorizedSession
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from approvals import emails

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_ISSUERS = {"accounts.google.com", "https://accounts.google.com"}
CLOCK_SKEW_SECONDS = 10
CHAT_SCOPE = "https://www.googleapis.com/auth/chat.bot"
CHAT_SYSTEM_ACCOUNT = "chat@system.gserviceaccount.com"  # signs, or is named in, Chat's tokens
CHAT_API_TIMEOUT = (3.05, 10)  # connect, read: seconds

_lock = threading.Lock()
_callback_session: requests.Session | None = None
_certs_session_instance: requests.Session | None = None
_chat_session: requests.Session | None = None


def _with_connect_retries(session: requests.Session) -> requests.Session:
    # Retry only failures to connect: the request never left, so repeating it is safe even for
    # a POST. Anything later (a timeout, a 5xx) is the delivery outbox's to retry.
    retry = Retry(total=2, connect=2, read=0, status=0, other=0, backoff_factor=0.2)
    # A connection per thread of the delivery pass (APPROVALS_DELIVERY_CONCURRENCY), kept alive.
    pool = max(10, settings.APPROVALS_DELIVERY_CONCURRENCY)
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool, pool_maxsize=pool)
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
    """Forget the process-wide sessions and cached certs (tests change settings between cases)."""
    global _callback_session, _certs_session_instance, _chat_session
    with _lock:
        _callback_session = None
        _certs_session_instance = None
        _chat_session = None
        _certs_caches.clear()


class ChatApiUnreachable(Exception):
    """The Chat API could not be asked (no connection, no access token); says why in a line."""


def chat_api(method: str, path: str, **kwargs) -> requests.Response:
    """Call the Chat API as the app: `path` under APPROVALS_GOOGLE_CHAT_API_URL (`v1/...`).

    One `AuthorizedSession` over Application Default Credentials (the service account on Cloud
    Run) per process, so the access token is fetched once and refreshed by google-auth.
    Raises ChatApiUnreachable when the call could not be made; any answer is returned.
    """
    global _chat_session
    try:
        with _lock:
            if _chat_session is None:
                credentials, _project = google.auth.default(scopes=[CHAT_SCOPE])
                _chat_session = _with_connect_retries(AuthorizedSession(credentials))
            session = _chat_session
        url = settings.APPROVALS_GOOGLE_CHAT_API_URL.rstrip("/") + "/" + path
        return session.request(method, url, timeout=CHAT_API_TIMEOUT, **kwargs)
    except (requests.RequestException, google.auth.exceptions.GoogleAuthError) as error:
        # The type only: a message could quote a request, and a request carries the token.
        raise ChatApiUnreachable(f"{type(error).__name__} calling the Chat API") from None


class InvalidToken(Exception):
    """The token is not acceptable; the message says why, without the token."""


class CertsUnavailable(Exception):
    """Google's signing certs could not be fetched: a temporary failure on our side."""


class CertsCache:
    """The signing certificates published at one URL, cached for this process.

    google-auth's `verify_token` fetches the certs on every call; at month-end volumes that is a
    request to Google per registration. This keeps them for the lifetime the server announces
    (`Cache-Control: max-age`), fetches at most once per lifetime even when many threads verify
    at once, and refetches early only when a token names a key id the cached set lacks (Google
    rotates keys), at most once per `UNKNOWN_KEY_REFETCH_SECONDS`, so forged key ids cannot
    turn the cache off.
    """

    DEFAULT_MAX_AGE_SECONDS = 300
    UNKNOWN_KEY_REFETCH_SECONDS = 30
    MAX_AGE_RE = re.compile(r"max-age=(\d+)")

    def __init__(self, url: str):
        self.url = url
        self.fetches = 0
        self._certs: dict | None = None
        self._expires_at = 0.0
        self._refetched_for_key_at = -math.inf
        self._lock = threading.Lock()

    def certs(self, key_id: str | None = None) -> dict:
        """The current certs by key id; raises CertsUnavailable if they cannot be had."""
        if self._usable(key_id, time.monotonic()):
            return self._certs
        with self._lock:  # one fetch at a time; the others wait, then use its result
            now = time.monotonic()
            if self._usable(key_id, now):
                return self._certs
            if self._certs is not None and now < self._expires_at:
                # Fresh, but without this key id: refetch, unless we did that a moment ago.
                if now - self._refetched_for_key_at < self.UNKNOWN_KEY_REFETCH_SECONDS:
                    return self._certs
                self._refetched_for_key_at = now
            self._fetch(now)
            return self._certs

    def _usable(self, key_id, now) -> bool:
        certs = self._certs
        return certs is not None and now < self._expires_at and (key_id is None or key_id in certs)

    def _fetch(self, now: float) -> None:
        self.fetches += 1
        try:
            response = _certs_session().get(self.url, timeout=(3.05, 5))
        except requests.RequestException as error:
            raise CertsUnavailable(f"{type(error).__name__} fetching signing certs") from None
        if response.status_code != 200:
            raise CertsUnavailable(f"HTTP {response.status_code} fetching signing certs")
        try:
            certs = response.json()
        except ValueError:
            raise CertsUnavailable("The signing certs are not JSON") from None
        if not isinstance(certs, dict) or not certs:
            raise CertsUnavailable("The signing certs are empty")
        match = self.MAX_AGE_RE.search(response.headers.get("Cache-Control", ""))
        max_age = int(match.group(1)) if match else self.DEFAULT_MAX_AGE_SECONDS
        self._certs = certs
        self._expires_at = now + max_age


_certs_caches: dict[str, CertsCache] = {}


def certs_cache(url: str) -> CertsCache:
    """The process-wide cache for the certs at `url`."""
    with _lock:
        if url not in _certs_caches:
            _certs_caches[url] = CertsCache(url)
        return _certs_caches[url]


def _certs_session() -> requests.Session:
    global _certs_session_instance
    with _lock:
        if _certs_session_instance is None:
            _certs_session_instance = _with_connect_retries(requests.Session())
        return _certs_session_instance


def verify_signed_jwt(token: str, *, certs_url: str, audience: str, issuers: set[str]) -> dict:
    """Verify a Google-signed JWT (signature, expiry with clock skew, audience, issuer) with
    google-auth against the cached certs at `certs_url`, and return its claims.

    Raises InvalidToken or CertsUnavailable.
    """
    try:
        key_id = jwt.decode_header(token).get("kid")
    except UNACCEPTABLE:
        raise InvalidToken("The token is not a valid Google-signed token.") from None
    certs = certs_cache(certs_url).certs(key_id if isinstance(key_id, str) else None)
    try:
        # What google.oauth2.id_token.verify_token does once it has fetched the certs.
        claims = jwt.decode(
            token, certs=certs, audience=audience, clock_skew_in_seconds=CLOCK_SKEW_SECONDS
        )
    except UNACCEPTABLE as error:
        raise InvalidToken(_describe(error)) from None
    _check_times(claims)
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or issuer not in issuers:
        raise InvalidToken("The token was not issued by the expected issuer.")
    return claims


# What google-auth raises for a token it cannot accept: ValueError (and its subclasses, the
# GoogleAuthError ones among them) for a bad signature, an unknown key, an expired token, a wrong
# audience or a token that is not a JWT at all; TypeError when it does arithmetic on an `iat` or
# `exp` that is not a number (`"iat": "soon"`); RecursionError when Python's JSON decoder meets
# a header or payload nested too deeply (they are decoded before the signature is checked).
UNACCEPTABLE = (ValueError, TypeError, RecursionError, google.auth.exceptions.GoogleAuthError)


def _check_times(claims) -> None:
    """`iat` and `exp` (and `nbf`, when present) are finite numbers, and `nbf` has come: the
    shapes google-auth's own time check takes for granted (`True`, `NaN` or `Infinity` pass it)."""
    for name in ("iat", "exp", "nbf"):
        value = claims.get(name)
        if name == "nbf" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidToken(f"The token's {name} is not a time.")
        if not math.isfinite(value):
            raise InvalidToken(f"The token's {name} is not a time.")
    nbf = claims.get("nbf")
    if nbf is not None and nbf - CLOCK_SKEW_SECONDS > time.time():
        raise InvalidToken("The token is not valid yet.")


@dataclass(frozen=True)
class IdTokenIdentity:
    email: str
    subject: str


def verify_id_token(token: str) -> IdTokenIdentity:
    """Verify an API caller's Google ID token for our audience and return who it names.

    Raises InvalidToken when the token is unacceptable and CertsUnavailable when the certs could
    not be fetched.
    """
    claims = verify_signed_jwt(
        token,
        certs_url=settings.APPROVALS_OIDC_CERTS_URL,
        audience=settings.APPROVALS_OIDC_AUDIENCE,
        issuers=GOOGLE_ISSUERS,
    )
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("The token names no subject.")
    email = claims.get("email")
    if not isinstance(email, str) or not email:
        raise InvalidToken("The token carries no e-mail; request it with the e-mail claim.")
    if claims.get("email_verified") is not True:
        raise InvalidToken("The token's e-mail is not verified.")
    try:
        mailbox = emails.canonical(email)
    except emails.InvalidAddress:
        raise InvalidToken("The token's e-mail is not an e-mail address.") from None
    return IdTokenIdentity(email=mailbox, subject=subject)


def verify_chat_token(token: str) -> dict:
    """Verify the bearer token Google Chat sends with an event, for APPROVALS_GOOGLE_CHAT_AUDIENCE,
    and return its claims.

    The Chat app's configuration chooses the form: audience the endpoint's URL, a Google OIDC ID
    token whose verified e-mail is chat@system.gserviceaccount.com (Google's OIDC certs); or
    audience the project number, a JWT issued and signed by chat@system.gserviceaccount.com
    (that account's x509 certs). Raises InvalidToken or CertsUnavailable.
    """
    audience = settings.APPROVALS_GOOGLE_CHAT_AUDIENCE
    if audience.isdigit():
        return verify_signed_jwt(
            token,
            certs_url=settings.APPROVALS_GOOGLE_CHAT_CERTS_URL,
            audience=audience,
            issuers={CHAT_SYSTEM_ACCOUNT},
        )
    claims = verify_signed_jwt(
        token,
        certs_url=settings.APPROVALS_OIDC_CERTS_URL,
        audience=audience,
        issuers=GOOGLE_ISSUERS,
    )
    # Any Google account can get an ID token for our URL: only Chat's own is Chat.
    if claims.get("email") != CHAT_SYSTEM_ACCOUNT or claims.get("email_verified") is not True:
        raise InvalidToken("The token is not Google Chat's.")
    return claims


def _describe(error: Exception) -> str:
    lowered = str(error).lower()
    if "expired" in lowered:
        return "The token has expired."
    if "audience" in lowered:
        return "The token is for another audience."
    if "signature" in lowered or "could not verify" in lowered:
        return "The token's signature is not valid."
    if "too early" in lowered:
        return "The token is not valid yet."
    if "key id" in lowered:
        return "The token is signed with an unknown key."
    return "The token is not a valid Google-signed token."


def project_id() -> str | None:
    """The project id: `GOOGLE_CLOUD_PROJECT` when set (the deployment sets it), else whatever
    Application Default Credentials know (on Cloud Run, the metadata server's answer); None when
    neither knows. Called once per process, when logging is configured on Cloud Run."""
    project = os.environ.get("GOOGLE_CLOUD_PROJECT", "").strip()
    if project:
        return project
    try:
        _credentials, project = google.auth.default()
    except google.auth.exceptions.DefaultCredentialsError:
        return None
    return project or None
