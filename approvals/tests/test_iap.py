"""Single sign-on through Identity-Aware Proxy: people are signed in from IAP's signed assertion
only, never from its unsigned headers; the sign-in form keeps working; the API ignores IAP.

Assertions are ES256 JWTs signed here with a local EC key through google-auth's own encoder; a
local server publishes the public key the way https://www.gstatic.com/iap/verify/public_key does.
"""

import json
import logging
import time

import pytest
from django.contrib.auth import get_user_model
from google.auth import jwt

from approvals.identity import iap
from approvals.models import ApprovalRequest, IapIdentity, Status
from approvals.tests.conftest import API_TOKEN, postgres_only
from approvals.tests.test_concurrency import at_once
from standins.google import CertsServer, EcSigningKey, SigningKey, sign_jwt
from standins.http import free_port

pytestmark = pytest.mark.django_db(transaction=True)

IAP_AUDIENCE = "/projects/123456789012/global/backendServices/4242424242"
CAROL = "accounts.google.com:1111"
DAVE = "accounts.google.com:2222"
NOT_CONFIRMED = "could not confirm your sign-in"
MAY_NOT_DECIDE = "Your account may not decide approval requests"


@pytest.fixture(scope="module")
def iap_key():
    return EcSigningKey("iap-key-1")


@pytest.fixture(scope="module")
def iap_certs_server(iap_key):
    server = CertsServer([iap_key]).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def iap_on(approvals_settings, iap_certs_server):
    approvals_settings.APPROVALS_IAP_AUDIENCE = IAP_AUDIENCE
    approvals_settings.APPROVALS_IAP_CERTS_URL = iap_certs_server.url
    return approvals_settings


@pytest.fixture
def assertion(iap_key):
    """An IAP assertion for Carol; keyword arguments override claims (None leaves one out)."""

    def sign(signer=None, **overrides):
        now = int(time.time())
        claims = {
            "iss": iap.IAP_ISSUER,
            "aud": IAP_AUDIENCE,
            "sub": CAROL,
            "email": "carol@example.com",
            "hd": "example.com",
            "iat": now,
            "exp": now + 600,
            **overrides,
        }
        claims = {key: value for key, value in claims.items() if value is not None}
        return jwt.encode(signer or iap_key.signer, claims).decode()

    return sign


def through_iap(client, path, token, method="get", **kwargs):
    return getattr(client, method)(path, headers={"X-Goog-IAP-JWT-Assertion": token}, **kwargs)


def signed_in_user(response):
    return response.wsgi_request.user


# --- Signing in ----------------------------------------------------------------------------------


def test_first_sign_in_creates_the_user_without_permissions_and_signs_them_in(client, assertion):
    response = through_iap(client, "/", assertion())

    assert response.status_code == 200
    user = get_user_model().objects.get()
    assert (user.username, user.email) == ("carol@example.com", "carol@example.com")
    assert signed_in_user(response) == user
    assert not user.has_usable_password()
    assert not (user.is_staff or user.is_superuser or user.groups.exists())
    assert not user.get_all_permissions()
    identity = IapIdentity.objects.get()
    assert (identity.user, identity.subject, identity.email) == (user, CAROL, "carol@example.com")
    # Without the decide permission the inbox says so instead of listing requests.
    assert MAY_NOT_DECIDE in response.content.decode()
    # The session follows: Django's login put the person in it.
    assert client.session["_auth_user_backend"] == iap.BACKEND
    assert client.session["_auth_user_id"] == str(user.pk)


def test_the_next_requests_keep_the_same_user_and_session(client, assertion):
    through_iap(client, "/", assertion())
    session_key = client.session.session_key

    response = through_iap(client, "/", assertion())

    assert response.status_code == 200
    assert get_user_model().objects.count() == 1
    assert client.session.session_key == session_key


def test_a_new_email_for_the_same_subject_updates_the_user_instead_of_creating_one(
    client, assertion
):
    through_iap(client, "/", assertion())
    client.logout()

    response = through_iap(client, "/", assertion(email="Carol.Jones@Example.com"))

    assert response.status_code == 200
    user = get_user_model().objects.get()
    assert user.email == "carol.jones@example.com"
    assert IapIdentity.objects.get().email == "carol.jones@example.com"
    assert signed_in_user(response) == user


def test_an_email_change_during_a_session_is_picked_up(client, assertion):
    through_iap(client, "/", assertion())

    response = through_iap(client, "/", assertion(email="carol.jones@example.com"))

    assert signed_in_user(response).email == "carol.jones@example.com"
    assert get_user_model().objects.get().email == "carol.jones@example.com"


def test_an_assertion_for_another_person_ends_the_session_and_signs_them_in(client, assertion):
    first = through_iap(client, "/", assertion())
    carol = signed_in_user(first)

    response = through_iap(client, "/", assertion(sub=DAVE, email="dave@example.com"))

    dave = signed_in_user(response)
    assert dave != carol and dave.email == "dave@example.com"
    assert client.session["_auth_user_id"] == str(dave.pk)
    assert client.session[iap.SESSION_SUBJECT] == DAVE


def test_usernames_are_derived_from_the_email_and_never_collide(client, make_user, assertion):
    make_user("carol@example.com", email="someone-else@example.com", approver=False)

    through_iap(client, "/", assertion())
    client.logout()
    # The same address for a new Google account (a new subject): another user, another name.
    through_iap(client, "/", assertion(sub="accounts.google.com:3333"))

    names = set(IapIdentity.objects.values_list("user__username", flat=True))
    assert names == {"carol@example.com-2", "carol@example.com-3"}


def test_the_clock_skew_allowance_is_ten_seconds(client, assertion):
    now = int(time.time())

    just_expired = through_iap(client, "/", assertion(iat=now - 600, exp=now - 5))
    assert just_expired.status_code == 200

    client.logout()
    long_expired = through_iap(client, "/", assertion(iat=now - 600, exp=now - 30))
    assert long_expired.status_code == 401


def test_a_person_added_to_approvers_decides(client, assertion, approvers_group, register):
    created = register(title="New monitor")
    response = through_iap(client, "/", assertion())
    assert MAY_NOT_DECIDE in response.content.decode()
    assert "New monitor" not in response.content.decode()

    signed_in_user(response).groups.add(approvers_group)

    inbox = through_iap(client, "/", assertion())
    assert "New monitor" in inbox.content.decode()
    decided = through_iap(
        client,
        f"/approvals/{created['id']}/decide",
        assertion(),
        method="post",
        data={"outcome": "approved", "comment": "Fine", "confirmed": "on"},
    )
    assert decided.status_code == 302
    approval = ApprovalRequest.objects.get(pk=created["id"])
    assert approval.status == Status.APPROVED
    assert approval.decisions.get().decided_by == "carol@example.com"


# --- Refusals ------------------------------------------------------------------------------------


def expired(assertion):
    now = int(time.time())
    return assertion(iat=now - 4000, exp=now - 3400)


def forged(assertion):
    # Another key claiming IAP's key id.
    return assertion(signer=EcSigningKey("iap-key-1").signer)


def rs256_with_iap_key_id(assertion):
    return assertion(signer=SigningKey("iap-key-1").signer)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (forged, "signature is not valid"),
        (expired, "expired"),
        (lambda assertion: assertion(aud="/projects/1/apps/someone-else"), "another audience"),
        (lambda assertion: assertion(iss="https://accounts.google.com"), "expected issuer"),
        (lambda assertion: assertion(email=None), "no e-mail"),
        (lambda assertion: assertion(sub=None), "no subject"),
        (lambda assertion: assertion(signer=EcSigningKey("other-key").signer), "unknown key"),
        (rs256_with_iap_key_id, "signature is not valid"),
        (lambda assertion: "not-a-jwt", "not a valid"),
    ],
    ids=[
        "forged",
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "no-email",
        "no-subject",
        "unknown-key",
        "rs256",
        "garbage",
    ],
)
def test_an_invalid_assertion_answers_401_and_signs_nobody_in(client, assertion, make, reason):
    token = make(assertion)

    response = client.get(
        "/",
        headers={
            "X-Goog-IAP-JWT-Assertion": token,
            # IAP's unsigned headers are never a fallback.
            "X-Goog-Authenticated-User-Email": "accounts.google.com:carol@example.com",
            "X-Goog-Authenticated-User-Id": CAROL,
        },
    )

    assert response.status_code == 401
    page = response.content.decode()
    assert NOT_CONFIRMED in page and reason in page
    assert token not in page
    assert signed_in_user(response).is_anonymous
    assert not get_user_model().objects.exists()


NESTED = b"[" * 5000 + b"]" * 5000


def odd_assertion(iap_key, shape):
    """An assertion for Carol signed with IAP's real test key, odd in `shape`."""
    now = int(time.time())
    header = {"alg": "ES256", "typ": "JWT", "kid": iap_key.key_id}
    claims = {
        "iss": iap.IAP_ISSUER,
        "aud": IAP_AUDIENCE,
        "sub": CAROL,
        "email": "carol@example.com",
        "iat": now,
        "exp": now + 600,
    }
    overrides = {
        "iat-string": {"iat": "soon"},
        "exp-null": {"exp": None},
        "iat-true": {"iat": True},
        "exp-infinity": {"exp": float("inf")},
        "nbf-in-an-hour": {"nbf": now + 3600},
        "aud-list-of-ints": {"aud": [1, 2]},
        "iss-list": {"iss": [iap.IAP_ISSUER]},
        "sub-number": {"sub": 1111},
        "sub-with-nul": {"sub": CAROL + "\x00"},
        "sub-too-long": {"sub": "accounts.google.com:" + "1" * 300},
        "sub-lone-surrogate": {"sub": CAROL + "\ud800"},
        "email-number": {"email": 5},
        "email-not-an-address": {"email": "carol@"},
        "email-with-nul": {"email": "carol\x00@example.com"},
        "email-lone-surrogate": {"email": "carol\ud800@example.com"},
        "email-too-long": {"email": "carol@ex" + "\u00ad" * 300 + "ample.com"},
    }
    if shape in overrides:
        return sign_jwt(iap_key.signer, header, {**claims, **overrides[shape]})
    if shape == "payload-nested":
        return sign_jwt(iap_key.signer, header, NESTED)
    return sign_jwt(iap_key.signer, NESTED, json.dumps(claims).encode())  # "header-nested"


ODD_ASSERTIONS = [
    *["iat-string", "exp-null", "iat-true", "exp-infinity", "nbf-in-an-hour"],
    *["aud-list-of-ints", "iss-list", "sub-number", "sub-with-nul", "sub-too-long"],
    *["sub-lone-surrogate", "email-number", "email-not-an-address", "email-with-nul"],
    *["email-lone-surrogate", "email-too-long", "payload-nested", "header-nested"],
]


@pytest.mark.parametrize("shape", ODD_ASSERTIONS)
def test_a_validly_signed_assertion_with_odd_contents_answers_401(client, iap_key, shape):
    response = through_iap(client, "/", odd_assertion(iap_key, shape))

    assert response.status_code == 401
    assert NOT_CONFIRMED in response.content.decode()
    assert signed_in_user(response).is_anonymous
    assert not get_user_model().objects.exists()


def test_an_invalid_assertion_ends_the_session_it_arrives_with(client, assertion):
    through_iap(client, "/", assertion())

    response = through_iap(client, "/", expired(assertion))

    assert response.status_code == 401
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302


def test_the_unsigned_email_header_alone_signs_nobody_in(client, make_user):
    make_user("carol", email="carol@example.com")

    response = client.get(
        "/",
        headers={
            "X-Goog-Authenticated-User-Email": "accounts.google.com:carol@example.com",
            "X-Goog-Authenticated-User-Id": CAROL,
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"
    assert not IapIdentity.objects.exists()


def test_an_iap_session_without_the_assertion_is_ended(client, assertion):
    through_iap(client, "/", assertion())

    response = client.get("/")

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session


def test_a_deactivated_person_is_refused(client, assertion):
    through_iap(client, "/", assertion())
    get_user_model().objects.update(is_active=False)
    client.logout()

    response = through_iap(client, "/", assertion())

    assert response.status_code == 403
    assert "deactivated" in response.content.decode()
    assert signed_in_user(response).is_anonymous


def test_unreachable_keys_answer_503_not_500(client, assertion, iap_on):
    iap_on.APPROVALS_IAP_CERTS_URL = f"http://127.0.0.1:{free_port()}/iap/verify/public_key"

    response = through_iap(client, "/", assertion())

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert signed_in_user(response).is_anonymous


def test_assertions_are_never_logged(client, assertion, caplog):
    tokens = [assertion(), expired(assertion), forged(assertion)]
    with caplog.at_level(logging.DEBUG):
        for token in tokens:
            through_iap(client, "/", token)

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "refused" in logged
    for token in tokens:
        assert token not in logged
        assert token.split(".")[2] not in logged


def test_iap_keys_are_fetched_once_for_many_requests(client, assertion, iap_certs_server):
    before = iap_certs_server.fetches

    for _ in range(3):
        through_iap(client, "/", assertion())
        client.logout()

    assert iap_certs_server.fetches - before == 1


# --- The other doors -----------------------------------------------------------------------------


def test_with_the_setting_off_the_assertion_is_ignored_and_the_sign_in_form_works(
    client, assertion, make_user, iap_on
):
    iap_on.APPROVALS_IAP_AUDIENCE = ""
    make_user("manager")

    ignored = through_iap(client, "/", assertion())
    assert ignored.status_code == 302
    assert not IapIdentity.objects.exists()

    signed_in = client.post(
        "/accounts/login/", {"username": "manager", "password": "pw-manager"}, follow=True
    )
    assert signed_in.status_code == 200
    assert signed_in_user(signed_in).get_username() == "manager"


def test_switching_the_setting_off_ends_iap_sessions(client, assertion, iap_on):
    through_iap(client, "/", assertion())
    iap_on.APPROVALS_IAP_AUDIENCE = ""

    assert client.get("/").status_code == 302


def test_with_the_setting_on_the_sign_in_form_still_works_for_break_glass_accounts(
    client, assertion, make_user
):
    make_user("admin", is_staff=True, is_superuser=True)

    signed_in = client.post("/accounts/login/", {"username": "admin", "password": "pw-admin"})
    assert signed_in.status_code == 302
    assert signed_in_user(client.get("/")).get_username() == "admin"

    # Behind IAP too: a session opened with the form is kept alongside a valid assertion.
    behind_iap = through_iap(client, "/admin/", assertion())
    assert behind_iap.status_code == 200
    assert signed_in_user(behind_iap).get_username() == "admin"
    assert not IapIdentity.objects.exists()


def test_api_paths_ignore_the_iap_assertion(client, assertion, registration_body):
    created = client.post(
        "/api/approvals",
        registration_body(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {API_TOKEN}", "X-Goog-IAP-JWT-Assertion": "forged"},
    )
    assert created.status_code == 201

    # Nor does a valid assertion authenticate an API call.
    fetched = through_iap(client, f"/api/approvals/{created.json()['id']}", assertion())
    assert fetched.status_code == 401
    assert fetched["Content-Type"].startswith("application/json")
    assert not IapIdentity.objects.exists()


def test_static_files_ignore_the_iap_assertion(client):
    response = through_iap(client, "/static/approvals/style.css", "forged")
    response.close()  # whitenoise streams the file

    assert response.status_code == 200


# --- The pieces ----------------------------------------------------------------------------------


def test_the_backend_authenticates_only_with_a_valid_assertion(assertion):
    backend = iap.IapBackend()

    user = backend.authenticate(None, iap_assertion=assertion())
    assert user.email == "carol@example.com"
    assert backend.authenticate(None) is None
    with pytest.raises(iap.InvalidAssertion, match="expired"):
        backend.authenticate(None, iap_assertion=expired(assertion))


def test_a_missing_assertion_is_a_clear_error():
    with pytest.raises(iap.InvalidAssertion, match="no IAP assertion"):
        iap.verify_assertion("")


@postgres_only
def test_simultaneous_first_sign_ins_of_one_person_create_one_user():
    for round_number in range(10):
        claims = iap.IapClaims(
            f"accounts.google.com:{round_number}", f"p{round_number}@example.com"
        )
        results = at_once(*[lambda claims=claims: iap.user_for(claims)] * 4)

        assert [kind for kind, _ in results] == ["ok"] * 4, results
        assert len({user.pk for _, user in results}) == 1
    assert get_user_model().objects.count() == 10


def test_a_client_paused_for_wrong_passwords_still_signs_in_through_iap(client, assertion):
    # IAP has confirmed the person; the brake on password guessing is for passwords only.
    for n in range(12):
        client.post("/accounts/login/", {"username": f"someone{n}", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "x", "password": "y"}).status_code == 429

    response = through_iap(client, "/", assertion())

    assert response.status_code == 200
    assert signed_in_user(response).email == "carol@example.com"
