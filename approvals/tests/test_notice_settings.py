"""A person's channels: the settings page lists every channel, says which reach them, and keeps
their choice; the outbox then sends each notice on the channels chosen, e-mail when no other
reaches them."""

import pytest

from approvals import services
from approvals.models import ApprovalRequest, ChannelPreference, ChatAccount, Notice
from approvals.notify import channels, notices

pytestmark = pytest.mark.django_db

PAGE = "/settings/notifications/"


@pytest.fixture
def chat_on(settings):
    """Google Chat turned on, and the manager reachable there (they added the app)."""
    settings.APPROVALS_GOOGLE_CHAT_AUDIENCE = "123456789012"
    ChatAccount.objects.create(
        channel="google_chat",
        email_key="manager@example.com",
        user_id="users/1",
        conversation="spaces/dm-manager",
    )


def boxes(page) -> dict[str, tuple[bool, bool]]:
    """Each channel's checkbox on the page: (checked, enabled)."""
    html = page.content.decode()
    found = {}
    for name in ("email", "slack", "google_chat"):
        start = html.index(f'id="channel-{name}"')
        tag = html[html.rindex("<input", 0, start) : html.index(">", start)]
        found[name] = (" checked" in tag, " disabled" not in tag)
    return found


def test_the_page_lists_every_channel_and_only_email_reaches_by_default(client, manager):
    client.force_login(manager)

    page = client.get(PAGE)

    assert page.status_code == 200
    assert boxes(page) == {
        "email": (True, True),
        "slack": (False, False),
        "google_chat": (False, False),
    }
    assert "To manager@example.com." in page.content.decode()
    assert page.content.decode().count("Not set up on this Approver.") == 2


def test_chat_is_offered_only_once_the_person_added_the_app(client, manager, make_user, chat_on):
    client.force_login(make_user("bea"))
    assert boxes(client.get(PAGE))["google_chat"] == (False, False)
    assert "start a direct message with it" in client.get(PAGE).content.decode()

    client.force_login(manager)
    assert boxes(client.get(PAGE))["google_chat"] == (True, True)


def test_turning_email_off_keeps_chat_and_the_notices_follow(client, manager, chat_on, register):
    client.force_login(manager)

    saved = client.post(PAGE, {"channels": ["google_chat"]})

    assert saved.status_code == 302
    assert ChannelPreference.objects.get(email_key="manager@example.com").off == ["email"]
    assert boxes(client.get(PAGE))["email"] == (False, True)
    approval = ApprovalRequest.objects.get(pk=register()["id"])
    queued = notices.tell_deciders(approval, Notice.Purpose.NEW)
    assert [(n.email, n.channel) for n in queued] == [("manager@example.com", "google_chat")]


def test_every_channel_off_is_refused_with_a_message(client, manager, chat_on):
    client.force_login(manager)

    refused = client.post(PAGE, {"channels": []})

    assert refused.status_code == 400
    assert "Keep at least one channel on" in refused.content.decode()
    assert not ChannelPreference.objects.exists()


@pytest.mark.parametrize("value", ["sms", "", "email\x00", "x" * 10_000])
def test_an_unknown_channel_is_refused_with_a_message(client, manager, value):
    client.force_login(manager)

    refused = client.post(PAGE, {"channels": ["email", value]})

    assert refused.status_code == 400
    assert "There is no channel called" in refused.content.decode()


def test_a_channel_that_no_longer_reaches_them_falls_back_to_email(manager, chat_on):
    services.choose_channels("manager@example.com", {"google_chat"}, {"email", "google_chat"})
    ChatAccount.objects.all().delete()  # they removed the app

    assert [c.name for c in channels.for_person("manager@example.com")] == ["email"]


def test_a_choice_for_a_channel_off_now_is_kept_for_when_it_is_on_again(manager, settings):
    services.choose_channels("manager@example.com", {"email"}, {"email", "slack"})

    services.choose_channels("manager@example.com", {"email"}, {"email"})  # Slack turned off

    assert ChannelPreference.objects.get().off == ["slack"]


def test_the_choice_holds_for_every_spelling_of_the_address(client, make_user, chat_on):
    ChatAccount.objects.filter().update(email_key="bea@example.com")
    client.force_login(make_user("bea", email="Bea@Example.COM"))

    client.post(PAGE, {"channels": ["google_chat"]})

    assert [c.name for c in channels.for_person("bea@example.com")] == ["google_chat"]


def test_signing_in_is_needed(client):
    assert client.get(PAGE).status_code == 302


def test_auditors_read_the_outbox_in_the_admin_and_may_not_change_it(
    client, auditor, manager, register
):
    approval = ApprovalRequest.objects.get(pk=register()["id"])
    [notice] = notices.tell_deciders(approval, Notice.Purpose.NEW)
    client.force_login(auditor)

    listed = client.get("/admin/approvals/notice/", {"q": "manager"})
    shown = client.get(f"/admin/approvals/notice/{notice.pk}/change/")

    assert listed.status_code == 200 and "manager@example.com" in listed.content.decode()
    assert shown.status_code == 200
    assert client.post(f"/admin/approvals/notice/{notice.pk}/delete/").status_code == 403
