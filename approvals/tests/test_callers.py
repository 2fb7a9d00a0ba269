"""API callers' ID tokens in production conditions: cached certs, key rotation, no token leaks."""

import json
import logging
import threading
import time

import pytest

from approvals.identity import google
from approvals.models import ApprovalRequest, AuditEvent
from approvals.tests.conftest import API_TOKEN, INVOKER
from standins.google import SigningKey, sign_jwt

pytestmark = pytest.mark.django_db


def register_with(client, registration_body, token):
    return client.post(
        "/api/approvals",
        registration_body(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_certs_are_fetched_once_for_many_verifications(
    client, registration_body, minter, certs_server
):
    before = certs_server.fetches
    for _ in range(50):
        assert register_with(client, registration_body, minter.token()).status_code == 201
    assert certs_server.fetches - before == 1


def test_concurrent_verifications_share_one_fetch(minter, certs_server):
    before = certs_server.fetches
    barrier = threading.Barrier(16)
    results = []

    def verify():
        barrier.wait()
        results.append(google.verify_id_token(minter.token()).email)

    threads = [threading.Thread(target=verify) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 16
    assert certs_server.fetches - before == 1


def test_the_certs_max_age_is_honoured(minter, certs_server):
    certs_server.cache_control = "public, max-age=1, must-revalidate"
    try:
        before = certs_server.fetches
        google.verify_id_token(minter.token())
        google.verify_id_token(minter.token())
        assert certs_server.fetches - before == 1
        time.sleep(1.1)
        google.verify_id_token(minter.token())
        assert certs_server.fetches - before == 2
    finally:
        certs_server.cache_control = "public, max-age=3600"


def test_a_rotated_key_is_picked_up_with_one_refetch(minter, certs_server):
    google.verify_id_token(minter.token())  # certs cached without the new key
    new_key = SigningKey("rotated-key")
    certs_server.certs[new_key.key_id] = new_key.cert_pem
    try:
        before = certs_server.fetches
        assert google.verify_id_token(minter.token(signer=new_key.signer)).email
        assert google.verify_id_token(minter.token(signer=new_key.signer)).email
        assert certs_server.fetches - before == 1
    finally:
        del certs_server.certs[new_key.key_id]


def test_tokens_naming_unknown_keys_cannot_turn_the_cache_off(minter, certs_server):
    google.verify_id_token(minter.token())
    before = certs_server.fetches
    for n in range(20):
        forged = minter.token(signer=SigningKey(f"forged-{n}").signer)
        with pytest.raises(google.InvalidToken, match="unknown key"):
            google.verify_id_token(forged)
    assert certs_server.fetches - before <= 1


def test_a_failing_certs_endpoint_gives_503_with_retry_after(
    client, registration_body, minter, approvals_settings, metadata_server
):
    approvals_settings.APPROVALS_OIDC_CERTS_URL = metadata_server.base_url + "/no-such-certs"
    response = register_with(client, registration_body, minter.token())
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "certificates" in response.json()["error"]


def test_tokens_never_reach_the_logs_or_the_audit_log(client, registration_body, minter, caplog):
    good, expired = minter.token(), minter.token(iat=1_000_000_000, exp=1_000_003_600)
    with caplog.at_level(logging.DEBUG):
        assert register_with(client, registration_body, good).status_code == 201
        assert register_with(client, registration_body, expired).status_code == 401
        assert register_with(client, registration_body, API_TOKEN).status_code == 201
        assert register_with(client, registration_body, API_TOKEN + "x").status_code == 401

    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    audited = " ".join(str(e.payload) + e.actor for e in AuditEvent.objects.all())
    for secret in (good, expired, API_TOKEN, good.split(".")[2]):
        assert secret not in logged
        assert secret not in audited


def test_every_401_says_why_in_the_bearer_challenge(client, registration_body, minter):
    response = register_with(client, registration_body, minter.token(aud="https://elsewhere"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == (
        'Bearer error="invalid_token", error_description="The token is for another audience."'
    )


# --- Validly signed tokens with odd contents: always 401, never a 500 ----------------------------

NESTED = b"[" * 5000 + b"]" * 5000


def odd_token(minter, shape):
    """A token signed with the test's real key whose claims or header are odd in `shape`."""
    now = int(time.time())
    key = minter.key
    header = {"alg": "RS256", "typ": "JWT", "kid": key.key_id}
    claims = minter.claims()
    overrides = {
        "iat-string": {"iat": "soon"},
        "exp-string": {"exp": "later"},
        "iat-list": {"iat": [now]},
        "exp-object": {"exp": {"at": now + 3600}},
        "exp-null": {"exp": None},
        "iat-true": {"iat": True},
        "exp-infinity": {"exp": float("inf")},
        "iat-nan": {"iat": float("nan")},
        "nbf-string": {"nbf": "now"},
        "nbf-in-an-hour": {"nbf": now + 3600},
        "aud-list-of-ints": {"aud": [1, 2]},
        "aud-list": {"aud": [minter.audience]},
        "aud-number": {"aud": 5},
        "iss-list": {"iss": ["https://accounts.google.com"]},
        "iss-object": {"iss": {"url": "https://accounts.google.com"}},
        "email-number": {"email": 5},
        "email-list": {"email": [INVOKER]},
        "email-not-an-address": {"email": "workflow"},
        "email-with-nul": {"email": INVOKER + "\x00"},
        "email-lone-surrogate": {"email": "\ud800" + INVOKER},
        "email-verified-string": {"email_verified": "true"},
        "email-verified-one": {"email_verified": 1},
        "sub-object": {"sub": {"id": 1}},
        "sub-null": {"sub": None},
    }
    if shape in overrides:
        return sign_jwt(key.signer, header, {**claims, **overrides[shape]})
    raw = json.dumps(claims).encode()
    return {
        "payload-nested": lambda: sign_jwt(key.signer, header, NESTED),
        "header-nested": lambda: sign_jwt(key.signer, NESTED, raw),
        "header-kid-list": lambda: sign_jwt(key.signer, {**header, "kid": [key.key_id]}, raw),
        "header-alg-list": lambda: sign_jwt(key.signer, {**header, "alg": ["RS256"]}, raw),
        "payload-not-an-object": lambda: sign_jwt(key.signer, header, b"[1]"),
        "payload-huge-number": lambda: sign_jwt(
            key.signer, header, b'{"iat": 1' + b"0" * 5000 + b"}"
        ),
        "payload-not-utf8": lambda: sign_jwt(key.signer, header, b'{"email": "\xff"}'),
    }[shape]()


ODD_SHAPES = [
    *["iat-string", "exp-string", "iat-list", "exp-object", "exp-null", "iat-true"],
    *["exp-infinity", "iat-nan", "nbf-string", "nbf-in-an-hour"],
    *["aud-list-of-ints", "aud-list", "aud-number", "iss-list", "iss-object"],
    *["email-number", "email-list", "email-not-an-address", "email-with-nul"],
    *["email-lone-surrogate", "email-verified-string", "email-verified-one"],
    *["sub-object", "sub-null", "payload-nested", "header-nested", "header-kid-list"],
    *["header-alg-list", "payload-not-an-object", "payload-huge-number", "payload-not-utf8"],
]


def test_the_odd_token_helper_signs_acceptable_tokens_when_nothing_is_odd(
    client, registration_body, minter
):
    header = {"alg": "RS256", "typ": "JWT", "kid": minter.key.key_id}
    token = sign_jwt(minter.key.signer, header, minter.claims())
    assert register_with(client, registration_body, token).status_code == 201


@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_a_validly_signed_token_with_odd_contents_gets_401(
    client, registration_body, minter, shape
):
    response = register_with(client, registration_body, odd_token(minter, shape))

    assert response.status_code == 401
    assert response.json()["error"]
    assert response["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert not ApprovalRequest.objects.exists()
