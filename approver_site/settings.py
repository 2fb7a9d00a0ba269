"""The one settings module, read from the environment.

Every variable is listed in the README ("Configuration"); the names and defaults are part of the
outside contract. Local runs (`make run`) and tests set them; on Cloud Run they come from the
service's environment and Secret Manager.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(
        f"{name} must be one of 1/0, true/false, yes/no, on/off; got {value!r}"
    )


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; got {value!r}") from None


DEBUG = env_bool("DJANGO_DEBUG")

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required unless DJANGO_DEBUG is on.")
    SECRET_KEY = "django-insecure-local-only-key-never-used-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "approvals",
]

# Cloud Run sets K_SERVICE in a service's containers and CLOUD_RUN_JOB in a job's (its container
# contract); there, log lines go to Cloud Logging as JSON (see "Logging" below).
ON_CLOUD_RUN = bool(os.environ.get("K_SERVICE") or os.environ.get("CLOUD_RUN_JOB"))

MIDDLEWARE = [
    # Cloud Run's probes: answered before the HTTPS redirect, the Host check and sessions.
    "approver_site.health.HealthCheckMiddleware",
    # Every line logged while serving a request carries its trace (Cloud Logging links them).
    *(["approver_site.cloud_logging.trace_middleware"] if ON_CLOUD_RUN else []),
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below whitenoise, so that the static files keep their caching: nothing else is stored.
    "approver_site.security.NoStoreMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "approvals.identity.iap.IapSignInMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "approver_site.security.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: a paused sign-in gets `approvals.identity.signin.paused_page`.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "approver_site.urls"
WSGI_APPLICATION = "approver_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Connections are kept for a minute and checked before reuse, so that a restarted database
# (a Cloud SQL maintenance window) costs one failed check, not a restart of the app.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "").strip() or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=60,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that does not answer must fail fast (503 to the caller), not hang a worker.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite locks the whole database for a writer, and the app and its jobs are separate
    # processes. Each transaction takes the write lock when it begins (IMMEDIATE), so a read
    # followed by a write can never deadlock with another writer and fail at once with "database
    # is locked"; a writer waits up to `timeout` seconds for the lock instead (no transaction
    # holds it across an HTTP call). The URL's query may override both (`...sqlite3?timeout=1`).
    sqlite_options = DATABASES["default"].setdefault("OPTIONS", {})
    sqlite_options.setdefault("transaction_mode", "IMMEDIATE")
    sqlite_options.setdefault("timeout", 20)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The brake on password guessing first (it refuses while paused, before any password is checked);
# the sign-in form's accounts next; people signing in through Identity-Aware Proxy last.
AUTHENTICATION_BACKENDS = [
    "approvals.identity.signin.PasswordBrake",
    "django.contrib.auth.backends.ModelBackend",
    "approvals.identity.iap.IapBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "approvals:inbox"
LOGOUT_REDIRECT_URL = "login"

# --- The brake on password guessing (django-axes; identity/signin.py; README, "Security") ------

# 5 wrong passwords for one account from one client pause that pair for 15 minutes; 10 from one
# client, whatever the accounts, pause the client (`identity.signin.CLIENT_FAILURE_LIMIT`).
# Counted in the database, shared by every instance. The order of the parameters matters: the
# handler reads the pair's count, then the client's.
AXES_HANDLER = "approvals.identity.signin.SignInBrake"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_RESET_ON_SUCCESS = True  # that account from that client only (SignInBrake)
AXES_USERNAME_CALLABLE = "approvals.identity.signin.account_name"
AXES_CLIENT_IP_CALLABLE = "approvals.identity.signin.client_address"
AXES_LOCKOUT_CALLABLE = "approvals.identity.signin.paused_page"
# No row per successful sign-in (a table that only grows); the failures are all the brake needs.
AXES_DISABLE_ACCESS_LOG = True
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]
AXES_VERBOSE = False
# How many entries at the end of X-Forwarded-For the app's own front ends wrote: 1 on Cloud Run
# (Google's front end appends the client's address), 2 behind a Google Cloud external Application
# Load Balancer (the client's, then its own), 0 with no proxy in front (the connection's address).
APPROVALS_TRUSTED_PROXY_HOPS = env_int("APPROVALS_TRUSTED_PROXY_HOPS", 1)
if APPROVALS_TRUSTED_PROXY_HOPS < 0:
    raise ImproperlyConfigured("APPROVALS_TRUSTED_PROXY_HOPS must be 0 or more.")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security (README, "Security"; `manage.py check --deploy` is clean with DEBUG off) ------------

# Cloud Run terminates TLS and forwards the original scheme in this header.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)

SECURE_HSTS_SECONDS = 0 if DEBUG else 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SECURE = not DEBUG
X_FRAME_OPTIONS = "DENY"
# Pages load only the app's own stylesheet and no script: nothing inline can run.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)

# --- The approvals app (contract: ../shared/contract.md) ---------------------------------------

APPROVALS_BASE_URL = os.environ.get("APPROVALS_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
APPROVALS_OIDC_AUDIENCE = os.environ.get("APPROVALS_OIDC_AUDIENCE", "") or APPROVALS_BASE_URL
APPROVALS_ALLOWED_INVOKERS = [email.lower() for email in env_list("APPROVALS_ALLOWED_INVOKERS")]
APPROVALS_OIDC_CERTS_URL = os.environ.get(
    "APPROVALS_OIDC_CERTS_URL", "https://www.googleapis.com/oauth2/v1/certs"
)
APPROVALS_API_TOKEN = os.environ.get("APPROVALS_API_TOKEN", "")
APPROVALS_CALLBACK_URL_PREFIXES = env_list(
    "APPROVALS_CALLBACK_URL_PREFIXES", "https://workflowexecutions.googleapis.com/v1/"
)
APPROVALS_CALLBACK_AUTH = os.environ.get("APPROVALS_CALLBACK_AUTH", "google").strip().lower()
if APPROVALS_CALLBACK_AUTH not in {"google", "none"}:
    raise ImproperlyConfigured("APPROVALS_CALLBACK_AUTH must be 'google' or 'none'.")
APPROVALS_DEFAULT_TIMEOUT_SECONDS = env_int("APPROVALS_DEFAULT_TIMEOUT_SECONDS", 86400)
# How many callbacks `deliver_callbacks` sends at once (approvals/delivery.py): a backlog after a
# Workflows outage drains this many times faster than one at a time; each is still claimed first.
APPROVALS_DELIVERY_CONCURRENCY = max(1, env_int("APPROVALS_DELIVERY_CONCURRENCY", 8))
# When pending requests remind their deciders: shares of the lifetime or times before expiry
# (approvals/notify/reminders.py; checked by approvals.E004). Empty: no reminders.
APPROVALS_REMINDERS = os.environ.get("APPROVALS_REMINDERS", "50%,1d")
APPROVALS_IAP_AUDIENCE = os.environ.get("APPROVALS_IAP_AUDIENCE", "").strip()
APPROVALS_IAP_CERTS_URL = os.environ.get(
    "APPROVALS_IAP_CERTS_URL", "https://www.gstatic.com/iap/verify/public_key"
)

# --- Chat channels (contract: "Chat channels"; docs/chat.md) -----------------------------------

# Slack is on when both of these are set; Google Chat when its audience is.
APPROVALS_SLACK_BOT_TOKEN = os.environ.get("APPROVALS_SLACK_BOT_TOKEN", "").strip()
APPROVALS_SLACK_SIGNING_SECRET = os.environ.get("APPROVALS_SLACK_SIGNING_SECRET", "").strip()
APPROVALS_SLACK_API_URL = (
    os.environ.get("APPROVALS_SLACK_API_URL", "").strip() or "https://slack.com/api/"
)
APPROVALS_GOOGLE_CHAT_AUDIENCE = os.environ.get("APPROVALS_GOOGLE_CHAT_AUDIENCE", "").strip()
APPROVALS_GOOGLE_CHAT_CERTS_URL = (
    os.environ.get("APPROVALS_GOOGLE_CHAT_CERTS_URL", "").strip()
    or "https://www.googleapis.com/service_accounts/v1/metadata/x509/chat@system.gserviceaccount.com"
)
APPROVALS_GOOGLE_CHAT_API_URL = (
    os.environ.get("APPROVALS_GOOGLE_CHAT_API_URL", "").strip() or "https://chat.googleapis.com/"
)

# --- Logging -------------------------------------------------------------------------------------

# On Cloud Run (a service or a job) log lines are structured JSON on stdout, which Cloud Logging
# parses: google-cloud-logging's StructuredLogHandler, which writes them synchronously and so
# survives Cloud Run's CPU throttling between requests, with the project id so that traces link
# (approver_site/cloud_logging.py). Locally, plain readable lines on stderr. One handler, on the
# root logger: every logger propagates to it, so no line is written twice.
LOG_LEVEL = os.environ.get("DJANGO_LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "default": (
            {"()": "approver_site.cloud_logging.structured_handler", "stream": "ext://sys.stdout"}
            if ON_CLOUD_RUN
            else {"class": "logging.StreamHandler", "formatter": "console"}
        ),
    },
    "root": {"handlers": ["default"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own loggers propagate to the root handler; no second handler, no line twice.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        # StructuredLogHandler writes its one-off diagnostic line through this logger, with
        # itself attached as a handler; propagating too would write that line twice.
        "google.cloud.logging_v2.handlers.structured_log": {"propagate": False},
        # django-axes narrates every sign-in at INFO; its warnings (failures, pauses) are enough.
        "axes": {"level": "WARNING"},
    },
}

# --- E-mail --------------------------------------------------------------------------------------

# Deciders are e-mailed by the `send_notifications` job (README, "E-mail"). SMTP by default;
# `make run` prints the mails on the console. The timeout keeps a mail server that does not answer
# from holding up the job's pass for long. (Google Cloud blocks outgoing port 25: use a relay's
# 587 with TLS.)
EMAIL_BACKEND = (
    os.environ.get("DJANGO_EMAIL_BACKEND", "").strip()
    or "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "").strip() or "localhost"
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS")
EMAIL_PORT = env_int("DJANGO_EMAIL_PORT", 587 if EMAIL_USE_TLS else 25)
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_TIMEOUT = env_int("DJANGO_EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = (
    os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "").strip() or "Approver <approver@localhost>"
)
