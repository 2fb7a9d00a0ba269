"""`manage.py check` names the configurations that cannot work in production (approvals/checks.py).

Each test starts from a valid production configuration and breaks one thing.
"""

import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.checks import run_checks
from django.test import override_settings

GOOGLE_PREFIX = "https://workflowexecutions.googleapis.com/v1/"
PRODUCTION = {
    "DEBUG": False,
    "SECRET_KEY": "a-long-random-production-like-secret-key-for-the-check-0123456789",
    "APPROVALS_ALLOWED_INVOKERS": ["workflow@demo-project.iam.gserviceaccount.com"],
    "APPROVALS_API_TOKEN": "",
    "APPROVALS_CALLBACK_URL_PREFIXES": [GOOGLE_PREFIX],
    "APPROVALS_CALLBACK_AUTH": "google",
    "APPROVALS_BASE_URL": "https://approver.example.run.app",
    "APPROVALS_OIDC_AUDIENCE": "https://approver.example.run.app",
}


def issues(**changes) -> dict[str, str]:
    """The app's check messages by id, for the production configuration with `changes`."""
    with override_settings(**{**PRODUCTION, **changes}):
        found = run_checks()
    return {issue.id: issue.msg for issue in found if issue.id.startswith("approvals.")}


def test_a_valid_production_configuration_passes():
    assert issues() == {}


def test_an_api_without_invokers_or_token_is_a_warning():
    assert set(issues(APPROVALS_ALLOWED_INVOKERS=[])) == {"approvals.W001"}
    assert issues(APPROVALS_ALLOWED_INVOKERS=[], APPROVALS_API_TOKEN="a-static-token") == {}


def test_no_callback_auth_towards_google_is_an_error_even_in_debug():
    for debug in (False, True):
        found = issues(DEBUG=debug, APPROVALS_CALLBACK_AUTH="none")
        assert set(found) == {"approvals.E001"}
        assert GOOGLE_PREFIX in found["approvals.E001"]


def test_a_plain_http_callback_prefix_outside_debug_is_an_error_with_google_auth():
    local = "http://127.0.0.1:8765/v1/"
    assert set(issues(APPROVALS_CALLBACK_URL_PREFIXES=[GOOGLE_PREFIX, local])) == {"approvals.E002"}
    # Without a token to leak it is a warning, and in debug (local stand-ins) nothing.
    assert set(issues(APPROVALS_CALLBACK_URL_PREFIXES=[local], APPROVALS_CALLBACK_AUTH="none")) == {
        "approvals.W002"
    }
    assert issues(DEBUG=True, APPROVALS_CALLBACK_URL_PREFIXES=[local]) == {}


def test_an_insecure_secret_key_with_debug_off_is_an_error():
    assert set(issues(SECRET_KEY="django-insecure-" + "x" * 50)) == {"approvals.E003"}
    assert issues(DEBUG=True, SECRET_KEY="django-insecure-local-only-key") == {}


@pytest.mark.parametrize("audience", ["http://approver.example.run.app", "approver", ""])
def test_an_audience_that_is_not_an_https_url_is_a_warning(audience):
    assert set(issues(APPROVALS_OIDC_AUDIENCE=audience)) == {"approvals.W003"}


def test_a_plain_http_base_url_is_reported_once_when_it_is_also_the_audience():
    plain = "http://approver.example.run.app"
    assert set(issues(APPROVALS_BASE_URL=plain)) == {"approvals.W004"}
    assert set(issues(APPROVALS_BASE_URL=plain, APPROVALS_OIDC_AUDIENCE=plain)) == {
        "approvals.W003"
    }
    assert issues(DEBUG=True, APPROVALS_BASE_URL=plain, APPROVALS_OIDC_AUDIENCE=plain) == {}


@pytest.mark.parametrize("value", ["50%,1d", " 25% , 75%, 4h", ""])
def test_reminder_points_that_parse_pass(value):
    assert issues(APPROVALS_REMINDERS=value) == {}


@pytest.mark.parametrize("value", ["halfway", "50", "0%", "100%", "1w", "50%;1d", None])
def test_reminder_points_that_do_not_parse_are_an_error_even_in_debug(value):
    for debug in (False, True):
        found = issues(DEBUG=debug, APPROVALS_REMINDERS=value)
        assert set(found) == {"approvals.E004"}
        assert "APPROVALS_REMINDERS" in found["approvals.E004"]


def manage_check(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=django_settings.BASE_DIR,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "slack",
    [
        {"APPROVALS_SLACK_BOT_TOKEN": "xoxb-1-2-abc"},
        {"APPROVALS_SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5"},
    ],
)
def test_half_a_slack_configuration_is_a_warning_naming_what_is_missing(slack):
    found = issues(**slack)

    assert set(found) == {"approvals.W005"}
    missing = ({"APPROVALS_SLACK_BOT_TOKEN", "APPROVALS_SLACK_SIGNING_SECRET"} - set(slack)).pop()
    assert f"{missing} is not" in found["approvals.W005"]


def test_a_slack_token_that_is_not_a_bot_token_is_a_warning():
    found = issues(APPROVALS_SLACK_BOT_TOKEN="xoxp-1-2-abc", APPROVALS_SLACK_SIGNING_SECRET="s")

    assert set(found) == {"approvals.W006"}
    assert "xoxp" not in found["approvals.W006"]  # a secret is never echoed


@pytest.mark.parametrize(
    ("audience", "ok"),
    [
        ("123456789012", True),
        ("https://approver.example.run.app/integrations/google-chat/events", True),
        ("http://approver.example.run.app/integrations/google-chat/events", False),
        ("projects/123456789012", False),
    ],
)
def test_a_chat_audience_must_be_an_https_url_or_a_project_number(audience, ok):
    found = issues(APPROVALS_GOOGLE_CHAT_AUDIENCE=audience)

    assert set(found) == (set() if ok else {"approvals.E005"})
    assert ok or audience in found["approvals.E005"]


def test_make_run_configuration_has_no_issues():
    # The Makefile's RUN_ENV.
    result = manage_check(
        DJANGO_DEBUG="1",
        APPROVALS_CALLBACK_URL_PREFIXES="http://127.0.0.1:8765/v1/",
        APPROVALS_CALLBACK_AUTH="none",
        APPROVALS_API_TOKEN="local-demo-token",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_an_error_stops_management_commands_and_names_its_id():
    result = manage_check(DJANGO_SECRET_KEY="x", APPROVALS_CALLBACK_AUTH="none")
    assert result.returncode == 1
    assert "approvals.E001" in result.stderr
