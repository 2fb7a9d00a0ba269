"""Configuration checks: `python manage.py check` reports settings that cannot work in production.

Errors (`approvals.E...`) are configurations that are wrong wherever they run; Django refuses to
run management commands (`migrate`, `deliver_callbacks` ...) while one is reported. Warnings
(`approvals.W...`) are what cannot work in production but is fine for a local run or a test, so
they do not stand in the way of `makemigrations` on a laptop; `check --deploy --fail-level
WARNING` fails on them. Each id is explained in the README ("Configuration checks").

A missing `DJANGO_SECRET_KEY` needs no check: settings refuse to start without it unless DEBUG is
on. Weak keys are Django's own `security.W009` under `check --deploy`.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

from approvals.notify import reminders

README = "See README.md, 'Configuration checks'."


def _is_https_url(value: str) -> bool:
    parts = urlsplit(value or "")
    return parts.scheme == "https" and bool(parts.hostname)


def _is_google_api(prefix: str) -> bool:
    host = (urlsplit(prefix).hostname or "").lower()
    return host == "googleapis.com" or host.endswith(".googleapis.com")


@checks.register()
def check_api_callers(app_configs, **kwargs):
    if settings.APPROVALS_ALLOWED_INVOKERS or settings.APPROVALS_API_TOKEN:
        return []
    return [
        checks.Warning(
            "The API accepts no caller: neither APPROVALS_ALLOWED_INVOKERS nor "
            "APPROVALS_API_TOKEN is set, so every registration is refused with 403.",
            hint="List the workflows' service accounts in APPROVALS_ALLOWED_INVOKERS. " + README,
            id="approvals.W001",
        )
    ]


@checks.register()
def check_callbacks(app_configs, **kwargs):
    issues = []
    prefixes = settings.APPROVALS_CALLBACK_URL_PREFIXES
    auth = settings.APPROVALS_CALLBACK_AUTH
    google_prefixes = [prefix for prefix in prefixes if _is_google_api(prefix)]
    if auth == "none" and google_prefixes:
        issues.append(
            checks.Error(
                "APPROVALS_CALLBACK_AUTH=none, but callbacks go to Google "
                f"({', '.join(google_prefixes)}), which refuses calls without an access token: "
                "no decision would ever reach a workflow.",
                hint="Remove APPROVALS_CALLBACK_AUTH (its default is google); 'none' is for "
                "local stand-ins of the callback endpoint. " + README,
                id="approvals.E001",
            )
        )
    if settings.DEBUG:
        return issues
    plain = [prefix for prefix in prefixes if urlsplit(prefix).scheme != "https"]
    if plain and auth == "google":
        issues.append(
            checks.Error(
                "Callbacks would carry the app's Google access token over plain HTTP: "
                f"APPROVALS_CALLBACK_URL_PREFIXES has {', '.join(plain)}.",
                hint="Use https:// prefixes (the default is "
                "https://workflowexecutions.googleapis.com/v1/). " + README,
                id="approvals.E002",
            )
        )
    elif plain:
        issues.append(
            checks.Warning(
                f"Callback URL prefixes that are not https: {', '.join(plain)}. Decisions "
                "would travel unencrypted; that is only right for a local stand-in.",
                hint="Use https:// prefixes in production. " + README,
                id="approvals.W002",
            )
        )
    return issues


@checks.register()
def check_secret_key(app_configs, **kwargs):
    if settings.DEBUG or not settings.SECRET_KEY.startswith("django-insecure"):
        return []
    return [
        checks.Error(
            "SECRET_KEY is a 'django-insecure' key while DEBUG is off: such keys are published "
            "(Django's project template, this repository), so anyone could forge sessions.",
            hint="Set DJANGO_SECRET_KEY to a long random value from Secret Manager. " + README,
            id="approvals.E003",
        )
    ]


@checks.register()
def check_public_urls(app_configs, **kwargs):
    if settings.DEBUG:
        return []
    issues = []
    audience = settings.APPROVALS_OIDC_AUDIENCE
    base_url = settings.APPROVALS_BASE_URL
    if not _is_https_url(audience):
        issues.append(
            checks.Warning(
                f"APPROVALS_OIDC_AUDIENCE is {audience!r}, not an https URL: Workflows asks for "
                "ID tokens whose audience is the app's https URL, so their registrations would "
                "be refused (it defaults to APPROVALS_BASE_URL).",
                hint="Set APPROVALS_BASE_URL to the service's https URL. " + README,
                id="approvals.W003",
            )
        )
    if not _is_https_url(base_url) and base_url != audience:
        issues.append(
            checks.Warning(
                f"APPROVALS_BASE_URL is {base_url!r}, not an https URL: the links in API "
                "answers and e-mails would not lead to the app.",
                hint="Set APPROVALS_BASE_URL to the service's https URL. " + README,
                id="approvals.W004",
            )
        )
    return issues


@checks.register()
def check_reminders(app_configs, **kwargs):
    # The e-mail job plans every reminder from this setting, so a value that does not parse
    # would fail each of its passes; stopping `migrate` and the checks job says so at deploy time.
    value = settings.APPROVALS_REMINDERS
    problem = reminders.setting_problem(value)
    if problem is None:
        return []
    return [
        checks.Error(
            f"APPROVALS_REMINDERS is {value!r}, which is not a list of reminder points: {problem}",
            hint=f"{reminders.FORMAT_HINT} {README}",
            id="approvals.E004",
        )
    ]


@checks.register()
def check_chat_channels(app_configs, **kwargs):
    issues = []
    token = settings.APPROVALS_SLACK_BOT_TOKEN
    secret = settings.APPROVALS_SLACK_SIGNING_SECRET
    if bool(token) != bool(secret):
        given, missing = (
            ("APPROVALS_SLACK_BOT_TOKEN", "APPROVALS_SLACK_SIGNING_SECRET")
            if token
            else ("APPROVALS_SLACK_SIGNING_SECRET", "APPROVALS_SLACK_BOT_TOKEN")
        )
        issues.append(
            checks.Warning(
                f"{given} is set but {missing} is not, so Slack stays off: nobody is told in "
                "Slack and its buttons are refused.",
                hint=f"Set both from the Slack app's settings, or neither. {README}",
                id="approvals.W005",
            )
        )
    if token and not token.startswith("xoxb-"):
        issues.append(
            checks.Warning(
                "APPROVALS_SLACK_BOT_TOKEN does not start with 'xoxb-': it is not a bot token, "
                "so Slack would refuse the app's messages.",
                hint=f"Use the app's Bot User OAuth Token (OAuth & Permissions). {README}",
                id="approvals.W006",
            )
        )
    audience = settings.APPROVALS_GOOGLE_CHAT_AUDIENCE
    if audience and not (audience.isdigit() or _is_https_url(audience)):
        issues.append(
            checks.Error(
                f"APPROVALS_GOOGLE_CHAT_AUDIENCE is {audience!r}: neither the endpoint's https "
                "URL nor a project number, so no event from Google Chat could be verified.",
                hint="Use what the Chat app's configuration says its audience is: the HTTP "
                f"endpoint URL or the project number. {README}",
                id="approvals.E005",
            )
        )
    return issues
