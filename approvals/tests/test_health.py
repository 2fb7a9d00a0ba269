"""`/healthz` and `/readyz`: Cloud Run's probes, cheap, public, and quiet.

The container's own command answering them over plain HTTP is tried in `test_container.py`; a
real database outage in `test_outages.py`.
"""

import logging

import pytest
from django.db import OperationalError
from django.test import Client

from approver_site import health


@pytest.mark.django_db
def test_healthz_answers_ok_without_touching_the_database_or_the_session(
    client, manager, django_assert_num_queries
):
    client.force_login(manager)  # a session cookie that would be read if anything asked

    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    assert not response.cookies


@pytest.mark.django_db
def test_readyz_asks_the_database_one_trivial_query(client, django_assert_num_queries):
    with django_assert_num_queries(1) as queries:
        response = client.get("/readyz")

    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert queries.captured_queries[0]["sql"] == "SELECT 1"
    assert not response.cookies


def test_readyz_answers_503_and_says_why_in_one_line_when_the_database_does_not_answer(
    client, monkeypatch, caplog
):
    class Unreachable:
        def cursor(self):
            raise OperationalError("connection to server at 10.0.0.5 failed\nmore detail")

    monkeypatch.setattr(health, "connection", Unreachable())

    with caplog.at_level(logging.INFO):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.content == b"unavailable\n"
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "django.request",
            "WARNING",
            "Not ready: the database did not answer "
            "(OperationalError: connection to server at 10.0.0.5 failed)",
        )
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_log_nothing_when_all_is_well(client, caplog, path):
    with caplog.at_level(logging.DEBUG):
        assert client.get(path).status_code == 200
        assert client.head(path).status_code == 200
    assert caplog.records == []


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_are_answered_over_plain_http_and_for_any_host(settings, path):
    """Probes reach the container over HTTP, with whatever Host header the platform sends."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["approver.example.run.app"]

    assert Client().get(path, headers={"Host": "10.1.2.3:8080"}).status_code == 200
    # Every other path keeps both protections.
    assert Client().get("/accounts/login/", headers={"Host": "10.1.2.3:8080"}).status_code == 400
    redirected = Client().get("/accounts/login/", headers={"Host": "approver.example.run.app"})
    assert redirected.status_code == 301


@pytest.mark.django_db
def test_other_methods_on_the_probe_paths_are_not_answered_by_the_probes(client):
    assert client.post("/healthz").status_code == 404
