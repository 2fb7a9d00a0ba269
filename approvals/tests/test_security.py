"""Attacks from the README's security table, each tried and shown to fail."""

import subprocess
import sys

import pytest
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.test import Client

from approvals.tests.conftest import API_TOKEN

pytestmark = pytest.mark.django_db


def sign_in(client, username, password, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def test_repeated_wrong_passwords_pause_the_account(client, make_user):
    make_user("victim")
    for _ in range(django_settings.AXES_FAILURE_LIMIT - 1):
        assert (
            sign_in(client, "victim", "guess").status_code == 200
        )  # the form again, with an error
    assert sign_in(client, "victim", "guess").status_code == 429  # the last one allowed

    paused = sign_in(client, "Victim", "pw-victim")  # even the right password, any case

    assert paused.status_code == 429
    assert "Too many wrong passwords" in paused.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_right_password_clears_the_count(client, make_user):
    make_user("forgetful")
    for _ in range(django_settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "forgetful", "wrong")
    assert sign_in(client, "ｆorgetful", "pw-forgetful").status_code == 302  # any spelling
    assert not AccessAttempt.objects.filter(username="forgetful").exists()


def test_the_pause_ends_after_the_window(client, make_user):
    from django.utils import timezone

    make_user("patient")
    for _ in range(django_settings.AXES_FAILURE_LIMIT):
        sign_in(client, "patient", "wrong")
    assert sign_in(client, "patient", "pw-patient").status_code == 429
    AccessAttempt.objects.filter(username="patient").update(
        attempt_time=timezone.now() - django_settings.AXES_COOLOFF_TIME
    )
    assert sign_in(client, "patient", "pw-patient").status_code == 302


def test_the_admin_sign_in_goes_through_the_same_brake(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/admin/"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "http:evil.example", "\\\\evil.example"]
)
def test_sign_in_never_redirects_off_site(client, make_user, target):
    make_user("careful")
    response = client.post(
        f"/accounts/login/?next={target}", {"username": "careful", "password": "pw-careful"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_pages_carry_a_strict_content_security_policy(client, manager):
    client.force_login(manager)
    for path in ("/", "/accounts/login/"):
        policy = client.get(path)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy


def test_templates_hold_no_inline_scripts_or_styles():
    from pathlib import Path

    for template in Path(django_settings.BASE_DIR, "templates").rglob("*.html"):
        html = template.read_text()
        assert "<script>" not in html and "<script " not in html, template
        assert "style=" not in html and "<style" not in html, template


def test_production_redirects_http_to_https_and_sends_hsts(settings):
    settings.SECURE_SSL_REDIRECT = True
    plain = Client().get("/accounts/login/")
    assert plain.status_code == 301 and plain["Location"].startswith("https://")
    secure = Client().get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"].startswith("max-age=31536000")


def test_check_deploy_is_clean_with_production_settings():
    # What docs/deploy.md sets; also clean for the app's own checks (approvals/checks.py).
    env = {
        "DJANGO_SECRET_KEY": "a-long-random-production-like-secret-key-for-the-check-0123456789",
        "DJANGO_ALLOWED_HOSTS": "approver.example.run.app",
        "APPROVALS_BASE_URL": "https://approver.example.run.app",
        "APPROVALS_ALLOWED_INVOKERS": "workflow@demo-project.iam.gserviceaccount.com",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/approvals/{id}/",
        "/approvals/{id}/email-decision?token=not-a-link",
        "/delegations/",
        "/tokens/",
        "/admin/",
        "/admin/approvals/approvalrequest/",
        "/admin/approvals/approvalrequest/{id}/change/",
        "/admin/approvals/approvalrequest/export/",
        "/api/approvals/{id}",
        "/api/openapi.json",
        "/no-such-page/",
    ],
)
def test_no_cache_may_store_what_a_signed_in_person_is_shown(client, make_user, register, path):
    approval = register()
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    response = client.get(
        path.format(id=approval["id"]), headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert response.status_code < 500
    assert {"private", "no-store"} <= cache_directives(response), response.get("Cache-Control")


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/accounts/password_change/"])
def test_no_cache_may_store_the_sign_in_pages_either(client, path):
    assert {"private", "no-store"} <= cache_directives(client.get(path))


def cache_directives(response) -> set[str]:
    header = response.get("Cache-Control", "")
    return {directive.strip().split("=")[0] for directive in header.split(",") if directive}


@pytest.mark.parametrize(
    "path", ["/integrations/slack/interactions", "/integrations/google-chat/events"]
)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_the_chat_endpoints_refuse_other_methods_with_a_message(client, path, method):
    refused = client.generic(method, path)

    assert refused.status_code == 405
    assert refused["Allow"] == "POST"
    assert b"takes POST requests only" in refused.content
