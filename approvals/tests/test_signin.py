"""The sign-in brake (django-axes) and the password pages: attacks on them, each tried."""

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core import mail
from django.test import Client

from approvals.tests.conftest import postgres_only
from approvals.tests.test_concurrency import at_once

pytestmark = pytest.mark.django_db

# README, "Security": 5 wrong passwords for one account from one client pause that pair; 10 from
# one client across any accounts pause the client; a pause lasts 15 minutes.
PER_ACCOUNT = 5
PER_CLIENT = 10
STRANGER, OWNER = "203.0.113.9", "198.51.100.7"


def from_client(address):
    """A browser whose requests Cloud Run's front end forwards from `address`."""
    return Client(headers={"X-Forwarded-For": address})


def sign_in(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


def paused(response) -> bool:
    return response.status_code == 429 and "Too many wrong passwords" in response.content.decode()


def fail_until_paused(client, username, limit=PER_ACCOUNT):
    """Wrong passwords until the brake answers; the last of `limit` is the one paused."""
    for _ in range(limit - 1):
        assert sign_in(client, username, "wrong").status_code == 200
    assert paused(sign_in(client, username, "wrong"))


@pytest.mark.parametrize(
    "spelling",
    [
        "ｂoss",  # full-width b
        "bｏss",  # full-width o
        "ｂｏｓｓ",
        "BOSS",
        "  boss  ",
        "ᵇoss",  # a modifier letter: NFKC makes it b
    ],
)
def test_every_spelling_of_an_account_counts_against_it(make_user, spelling):
    make_user("boss")
    stranger = from_client(STRANGER)
    fail_until_paused(stranger, spelling)

    assert paused(sign_in(stranger, "boss", "pw-boss"))
    assert paused(sign_in(stranger, "ｂｏss", "pw-boss"))
    assert "_auth_user_id" not in stranger.session


def test_spellings_mixed_share_one_count(make_user):
    make_user("boss")
    stranger = from_client(STRANGER)
    for spelling in ["ｂoss", "bｏss", "BOSS", "boss"]:
        assert sign_in(stranger, spelling, "wrong").status_code == 200
    assert paused(sign_in(stranger, "bosｓ", "wrong"))


def test_a_stranger_cannot_lock_the_owner_out(make_user):
    make_user("boss")
    stranger = from_client(STRANGER)
    fail_until_paused(stranger, "boss")
    for _ in range(3):
        assert paused(sign_in(stranger, "boss", "wrong"))

    owner = from_client(OWNER)
    assert sign_in(owner, "boss", "pw-boss").status_code == 302
    assert owner.session["_auth_user_id"]


def test_a_success_clears_only_that_accounts_count_from_that_client(make_user):
    make_user("boss")
    make_user("mallory")
    stranger = from_client(STRANGER)
    for _ in range(PER_ACCOUNT - 1):
        sign_in(stranger, "boss", "wrong")

    # The owner signing in elsewhere, through another spelling, and the stranger signing in to
    # an account of their own leave the stranger's count for boss where it was.
    assert sign_in(from_client(OWNER), "ｂoss", "pw-boss").status_code == 302
    assert sign_in(from_client(STRANGER), "mallory", "pw-mallory").status_code == 302

    assert paused(sign_in(stranger, "boss", "wrong"))


def test_one_client_guessing_across_many_accounts_is_paused(make_user):
    names = [f"person{n}" for n in range(PER_CLIENT + 2)]
    for name in names[::2]:
        make_user(name)  # existing and unknown accounts alike
    sprayer = from_client(STRANGER)

    answers = [sign_in(sprayer, name, "Summer2026!").status_code for name in names]

    assert answers[: PER_CLIENT - 1] == [200] * (PER_CLIENT - 1)
    assert answers[PER_CLIENT - 1 :] == [429] * (len(names) - PER_CLIENT + 1)
    assert paused(sign_in(sprayer, "person0", "pw-person0"))
    # Everyone else keeps signing in.
    assert sign_in(from_client(OWNER), "person0", "pw-person0").status_code == 302


def test_forged_addresses_in_front_of_the_front_ends_do_not_make_a_new_client(make_user):
    make_user("boss")
    for n in range(PER_ACCOUNT - 1):
        forged = from_client(f"10.0.0.{n}, {STRANGER}")
        assert sign_in(forged, "boss", "wrong").status_code == 200
    assert paused(sign_in(from_client(f"192.0.2.1,{STRANGER}"), "boss", "wrong"))


def test_addresses_of_one_ipv6_network_are_one_client(make_user):
    make_user("boss")
    for n in range(1, PER_ACCOUNT):
        assert sign_in(from_client(f"2001:db8:1:2::{n:x}"), "boss", "wrong").status_code == 200
    assert paused(sign_in(from_client("2001:db8:1:2:ffff:1:2:3"), "boss", "wrong"))
    assert sign_in(from_client("2001:db8:1:3::1"), "boss", "pw-boss").status_code == 302


class CountingHasher(PBKDF2PasswordHasher):
    """The production hasher, counting the passwords it hashes: the guesses really tried."""

    algorithm = "counting_pbkdf2_sha256"
    hashed = []

    def encode(self, password, salt, iterations=None):
        self.hashed.append(password)
        return super().encode(password, salt, iterations)


@postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("username", ["boss", "nobody-by-this-name"])
def test_a_burst_of_simultaneous_guesses_gets_no_more_tries(settings, make_user, username):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    make_user("boss")
    CountingHasher.hashed.clear()

    guesses = at_once(
        *[lambda n=n: sign_in(from_client(STRANGER), username, f"guess-{n}") for n in range(12)]
    )

    assert sorted(response.status_code for _, response in guesses) == [200] * (PER_ACCOUNT - 1) + [
        429
    ] * (12 - PER_ACCOUNT + 1)
    assert len(CountingHasher.hashed) == PER_ACCOUNT


@pytest.mark.parametrize(
    ("hops", "forwarded", "client"),
    [
        (1, None, "127.0.0.1"),  # no proxy in front (local runs, tests)
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "1.2.3.4, 203.0.113.9", "203.0.113.9"),  # the left part is the client's own
        (1, "not-an-address, 203.0.113.9", "203.0.113.9"),
        (1, "203.0.113.9, garbage", "127.0.0.1"),  # a front end never writes that
        (2, "1.2.3.4, 203.0.113.9, 130.211.0.5", "203.0.113.9"),  # a load balancer in front
        (2, "203.0.113.9", "203.0.113.9"),  # straight to Cloud Run, past the load balancer
        (0, "203.0.113.9", "127.0.0.1"),  # no proxy trusted: the connection's address
        (1, "::ffff:203.0.113.9", "203.0.113.9"),
        (1, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"),
    ],
)
def test_the_client_is_the_address_the_front_end_wrote(settings, rf, hops, forwarded, client):
    from approvals.identity.signin import client_address

    settings.APPROVALS_TRUSTED_PROXY_HOPS = hops
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    assert client_address(rf.post("/accounts/login/", headers=headers)) == client


@pytest.mark.parametrize(
    "username", ["x" * 5000, "ｘ" * 151, "boss\x00", "\ufdfa" * 40, "a\u0301" * 100]
)
def test_hostile_usernames_get_the_form_again(make_user, username):
    make_user("boss")
    answer = sign_in(from_client(STRANGER), username, "wrong")
    assert answer.status_code == 200
    assert "didn't match" in answer.content.decode()


@pytest.mark.parametrize("username", ["boss", "nobody-by-this-name"])
def test_a_pause_reads_the_same_for_accounts_that_exist_or_not(make_user, username):
    make_user("boss")
    stranger = from_client(STRANGER)
    fail_until_paused(stranger, username)
    page = sign_in(stranger, username, "wrong").content.decode()
    assert "Too many wrong passwords. Try again in 15 minutes." in page
    assert '<form method="post"' in page and "didn't match" not in page


# --- The password pages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
        "/accounts/reset/MQ/set-password/",
        "/accounts/reset/MQ/abc-123/",
        "/accounts/reset/done/",
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_password_reset_by_email_is_not_offered(make_user, path, method):
    make_user("boss")
    answer = getattr(Client(), method)(path, {"email": "boss@example.com"})
    assert answer.status_code == 404
    assert mail.outbox == []


def change_password(client, old, new="a-new-long-passphrase-42"):
    return client.post(
        "/accounts/password_change/",
        {"old_password": old, "new_password1": new, "new_password2": new},
    )


def test_a_signed_in_person_changes_their_password(make_user):
    boss = make_user("boss")
    client = from_client(OWNER)
    client.force_login(boss)
    page = client.get("/accounts/password_change/")
    assert page.status_code == 200 and "Old password" in page.content.decode()

    changed = change_password(client, "pw-boss")

    assert changed.status_code == 302 and changed["Location"] == "/accounts/password_change/done/"
    assert client.get("/").status_code == 200  # still signed in
    assert sign_in(from_client(OWNER), "boss", "a-new-long-passphrase-42").status_code == 302


def test_the_password_change_page_needs_a_sign_in():
    answer = Client().get("/accounts/password_change/")
    assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")


def test_wrong_old_passwords_on_the_change_page_pause_like_the_sign_in(make_user):
    boss = make_user("boss")
    thief = from_client(STRANGER)  # a session left open on a shared computer
    thief.force_login(boss)
    for _ in range(PER_ACCOUNT - 1):
        answer = change_password(thief, "guess")
        assert answer.status_code == 200 and "entered incorrectly" in answer.content.decode()

    assert paused(change_password(thief, "guess"))
    assert paused(change_password(thief, "pw-boss"))  # even the right one, while paused
    assert paused(sign_in(from_client(STRANGER), "boss", "pw-boss"))  # one brake
    assert sign_in(from_client(OWNER), "boss", "pw-boss").status_code == 302  # the owner's own


def test_the_admin_password_change_goes_through_the_same_page(admin_client):
    answer = admin_client.get("/admin/password_change/")
    assert answer.status_code == 302 and answer["Location"] == "/accounts/password_change/"


def test_an_account_without_a_password_has_nothing_to_change(make_user):
    person = make_user("iap-person")
    person.set_unusable_password()
    person.save()
    client = from_client(OWNER)
    client.force_login(person)

    page = client.get("/accounts/password_change/")
    assert page.status_code == 200 and "no password" in page.content.decode()
    for _ in range(PER_ACCOUNT + 1):
        assert change_password(client, "anything").status_code == 403
    assert client.get("/").status_code == 200  # nothing counted, nothing paused


@pytest.mark.parametrize("has_password", [True, False], ids=["password", "iap-only"])
def test_the_header_links_to_the_password_page_only_for_those_with_a_password(
    make_user, has_password
):
    person = make_user("boss")
    if not has_password:
        person.set_unusable_password()
        person.save()
    client = from_client(OWNER)
    client.force_login(person)

    inbox = client.get("/").content.decode()

    assert ('href="/accounts/password_change/"' in inbox) is has_password
