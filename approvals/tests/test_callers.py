"""API callers' ID tokens in production conditions: cached certs, key rotation, no token leaks."""

import logging
import threading
import time

import pytest

from approvals import google
from approvals.models import AuditEvent

from .conftest import API_TOKEN
from .standins import SigningKey

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
