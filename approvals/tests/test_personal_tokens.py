"""Personal access tokens for people: the page where they make, see and revoke theirs, the
management command, and the auditors' read-only list in the admin."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from approvals.identity import tokens
from approvals.models import PersonalToken

pytestmark = pytest.mark.django_db

TOKEN_RE = re.compile(r"apr_[a-z2-9]{12}_[A-Za-z0-9_-]{43}")


def api_works(client, secret) -> int:
    """The status of `GET /api/approvals?awaiting=me` with this token."""
    return client.get(
        "/api/approvals?awaiting=me", headers={"Authorization": f"Bearer {secret}"}
    ).status_code


def shown_tokens(html: str) -> list[str]:
    return TOKEN_RE.findall(html)


# --- The page -----------------------------------------------------------------------------------


def test_the_inbox_header_links_to_the_token_page(client, make_user):
    client.force_login(make_user("nobody", approver=False))
    html = client.get("/").content.decode()
    assert '<a href="/tokens/">API tokens</a>' in html


def test_the_page_needs_a_signed_in_person(client):
    response = client.get("/tokens/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert client.post("/tokens/", {"name": "x", "days": "90"}).status_code == 302
    assert not PersonalToken.objects.exists()


def test_a_new_token_is_shown_once_and_works(client, manager):
    client.force_login(manager)
    empty = client.get("/tokens/")
    assert empty.status_code == 200
    assert "You have no tokens yet." in empty.content.decode()

    made = client.post("/tokens/", {"name": "expense bot", "days": "30"})

    assert made.status_code == 200
    html = made.content.decode()
    [secret] = shown_tokens(html)
    assert "Copy it now: it is not shown again" in html
    token = PersonalToken.objects.get()
    assert (token.user, token.name) == (manager, "expense bot")
    assert timedelta(days=29, hours=23) < token.expires_at - token.created_at <= timedelta(days=30)
    assert api_works(Client(), secret) == 200

    again = client.get("/tokens/").content.decode()
    assert shown_tokens(again) == []
    assert "expense bot" in again and token.prefix in again


def test_the_list_shows_name_prefix_and_dates_of_each_token(client, manager):
    used = tokens.issue(manager, "used one")
    revoked = tokens.issue(manager, "revoked one")
    expired = tokens.issue(manager, "expired one", days=7)
    api_works(Client(), used.secret)
    tokens.revoke(revoked.token.pk, manager)
    PersonalToken.objects.filter(pk=expired.token.pk).update(
        created_at=timezone.now() - timedelta(days=8), expires_at=timezone.now() - timedelta(days=1)
    )
    client.force_login(manager)

    html = client.get("/tokens/").content.decode()

    items = re.findall(r"<li>(.*?)</li>", html, re.S)
    assert len(items) == 3
    by_name = {
        name: next(i for i in items if f"<strong>{name} one</strong>" in i)
        for name in ("used", "revoked", "expired")
    }
    assert "Active" in by_name["used"] and "Revoke" in by_name["used"]
    assert "last used never" not in by_name["used"] and "last used <time" in by_name["used"]
    assert "Revoked" in by_name["revoked"] and "· revoked <time" in by_name["revoked"]
    assert "Expired" in by_name["expired"] and "expired <time" in by_name["expired"]
    for item in (by_name["revoked"], by_name["expired"]):
        assert "last used never" in item
        assert "<button" not in item  # nothing to revoke
    for issued in (used, revoked, expired):
        assert issued.token.prefix in html
        assert issued.secret not in html
    assert "Created <time" in html


def test_revoking_a_token_stops_the_api_accepting_it(client, manager):
    issued = tokens.issue(manager, "bot")
    assert api_works(Client(), issued.secret) == 200
    client.force_login(manager)

    response = client.post(f"/tokens/{issued.token.pk}/revoke")

    assert response.status_code == 302 and response["Location"] == "/tokens/"
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is not None
    assert api_works(Client(), issued.secret) == 401
    followed = client.get("/tokens/")
    assert any("is revoked" in str(m) for m in followed.context["messages"])
    again = client.post(f"/tokens/{issued.token.pk}/revoke", follow=True)
    assert any("already revoked" in str(m) for m in again.context["messages"])


def test_other_peoples_tokens_are_neither_listed_nor_revocable(client, manager, make_user):
    theirs = tokens.issue(make_user("other"), "their bot")
    client.force_login(manager)
    assert theirs.token.prefix not in client.get("/tokens/").content.decode()

    response = client.post(f"/tokens/{theirs.token.pk}/revoke")

    assert response.status_code == 404
    theirs.token.refresh_from_db()
    assert theirs.token.revoked_at is None
    assert api_works(Client(), theirs.secret) == 200
    assert client.post("/tokens/999999/revoke").status_code == 404


def test_revoking_takes_a_post_with_the_csrf_token(manager):
    issued = tokens.issue(manager, "bot")
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    assert client.get(f"/tokens/{issued.token.pk}/revoke").status_code == 405
    assert client.post(f"/tokens/{issued.token.pk}/revoke").status_code == 403
    assert client.post("/tokens/", {"name": "bot", "days": "90"}).status_code == 403
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is None
    assert PersonalToken.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "days": "90"}, "name", "Give the token a name"),
        ({"name": "   ", "days": "90"}, "name", "Give the token a name"),
        ({"name": "x" * 101, "days": "90"}, "name", "at most 100"),
        ({"name": "line\nbreak", "days": "90"}, "name", "control characters"),
        ({"name": "nul\x00", "days": "90"}, "name", "Null characters"),
        ({"name": "bot", "days": "9999"}, "days", "valid choice"),
        ({"name": "bot", "days": "soon"}, "days", "valid choice"),
        ({"name": "bot"}, "days", "required"),
    ],
)
def test_a_form_it_cannot_take_makes_no_token(client, manager, data, field, message):
    client.force_login(manager)
    response = client.post("/tokens/", data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert shown_tokens(response.content.decode()) == []
    assert not PersonalToken.objects.exists()


def test_a_person_holds_at_most_twenty_tokens_in_force(client, manager):
    for n in range(tokens.MAX_ACTIVE):
        tokens.issue(manager, f"bot {n}")
    client.force_login(manager)
    response = client.post("/tokens/", {"name": "one more", "days": "7"})
    assert response.status_code == 400
    assert "revoke one first" in response.content.decode()
    tokens.revoke(PersonalToken.objects.first().pk, manager)
    assert client.post("/tokens/", {"name": "one more", "days": "7"}).status_code == 200


# --- The command --------------------------------------------------------------------------------


def issue_command(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("issue_personal_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_prints_a_new_token_once_valid_for_90_days(client, manager):
    out, err = issue_command("manager")

    [secret] = shown_tokens(out)
    assert out == secret + "\n"
    assert secret not in err
    token = PersonalToken.objects.get()
    assert token.prefix in err and "not shown again" in err
    assert token.user == manager
    assert token.expires_at - token.created_at == timedelta(days=90)
    assert api_works(client, secret) == 200


def test_the_command_takes_days_and_a_name(manager):
    issue_command("manager", "--days", "7", "--name", "nightly report")
    token = PersonalToken.objects.get()
    assert token.expires_at - token.created_at == timedelta(days=7)
    assert token.name == "nightly report"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody"], "There is no user 'nobody'"),
        (["manager", "--days", "0"], "1 to 366 days"),
        (["manager", "--days", "367"], "1 to 366 days"),
        (["manager", "--name", " "], "name is 1 to 100"),
        (["idle"], "inactive"),
    ],
)
def test_the_command_refuses_what_it_cannot_issue(manager, make_user, args, message):
    make_user("idle", is_active=False)
    with pytest.raises(CommandError, match=message):
        issue_command(*args)
    assert not PersonalToken.objects.exists()


# --- The admin ----------------------------------------------------------------------------------


def test_auditors_list_tokens_read_only_without_their_digest(signed_in_auditor, client, manager):
    issued = tokens.issue(manager, "expense bot")
    listed = client.get("/admin/approvals/personaltoken/")
    assert listed.status_code == 200
    html = listed.content.decode()
    assert issued.token.prefix in html and "expense bot" in html and "manager" in html
    page = client.get(f"/admin/approvals/personaltoken/{issued.token.pk}/change/")
    assert page.status_code == 200
    for shown in (listed, page):
        assert issued.token.digest not in shown.content.decode()
        assert issued.secret not in shown.content.decode()
    assert client.get("/admin/approvals/personaltoken/add/").status_code == 403
    assert (
        client.post(f"/admin/approvals/personaltoken/{issued.token.pk}/delete/").status_code == 403
    )
    changed = client.post(
        f"/admin/approvals/personaltoken/{issued.token.pk}/change/", {"name": "renamed"}
    )
    assert changed.status_code == 403
    assert PersonalToken.objects.get().name == "expense bot"


def test_people_who_do_not_audit_see_no_tokens_in_the_admin(client, make_user):
    tokens.issue(make_user("staffer", is_staff=True), "bot")
    client.force_login(PersonalToken.objects.get().user)
    assert client.get("/admin/approvals/personaltoken/").status_code == 403
