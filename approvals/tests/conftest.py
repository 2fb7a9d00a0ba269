"""Shared fixtures and helpers for the tests; the stand-ins they start live in `standins/`.

google-auth reads GCE_METADATA_HOST and GCE_METADATA_IP once, when it is first imported, so the
metadata stand-in's port is chosen and exported here, before anything imports google.auth.
"""

import os
import tempfile

from standins.http import free_port

METADATA_PORT = free_port()
os.environ["GCE_METADATA_HOST"] = f"127.0.0.1:{METADATA_PORT}"
os.environ["GCE_METADATA_IP"] = f"127.0.0.1:{METADATA_PORT}"
os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
os.environ["CLOUDSDK_CONFIG"] = tempfile.mkdtemp(prefix="approver-gcloud-")  # no gcloud ADC

import google.auth.compute_engine._metadata as _gce_metadata  # noqa: E402
import pytest  # noqa: E402
from django.contrib.auth.models import Group, Permission  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper  # noqa: E402
from django.test import override_settings  # noqa: E402

from approvals import audit  # noqa: E402
from approvals.identity import google as approvals_google  # noqa: E402
from standins.google import CertsServer, MetadataServer, SigningKey, TokenMinter  # noqa: E402
from standins.slack import BOT_TOKEN as SLACK_BOT_TOKEN  # noqa: E402
from standins.slack import SIGNING_SECRET as SLACK_SIGNING_SECRET  # noqa: E402
from standins.slack import SlackServer  # noqa: E402
from standins.smtp import MailServer  # noqa: E402
from standins.workflows import CallbackReceiver  # noqa: E402

assert os.environ["GCE_METADATA_HOST"] == _gce_metadata._GCE_METADATA_HOST, (
    "google.auth was imported before the tests could point it at the metadata stand-in"
)

# Row locks and truly concurrent writers exist on PostgreSQL only; SQLite serialises writers and
# the app runs there with a single worker (local runs).
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL: row locks and concurrent writers"
)

AUDIENCE = "https://approver.example.run.app"
INVOKER = "workflow@demo-project.iam.gserviceaccount.com"
API_TOKEN = "test-static-api-token"


@pytest.fixture(scope="session", autouse=True)
def session_settings(tmp_path_factory):
    """Pages use the production static storage (a manifest of hashed names), as built in the
    container; collect once, into this run's own folder, so templates resolve `{% static %}`."""
    # Also for the whole session (the live server reads it once, when it starts): the test
    # client and the live server speak plain http, which production redirects to https
    # (`test_security` checks that redirect on its own).
    with override_settings(
        STATIC_ROOT=tmp_path_factory.mktemp("static"), SECURE_SSL_REDIRECT=False
    ):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield


@pytest.fixture(scope="session", autouse=True)
def sqlite_flush_past_the_audit_triggers():
    """Let the reset after each transactional test empty the audit log on SQLite.

    Django's `flush` empties SQLite tables with DELETE, which the audit log's trigger refuses
    (on PostgreSQL it uses TRUNCATE, which a row trigger does not see). The reset drops the
    triggers, deletes and re-creates them in its one transaction: production's never bend.
    """
    operations = SQLiteWrapper.ops_class
    sql_flush = operations.sql_flush

    def flush_around_the_triggers(self, style, tables, **options):
        statements = sql_flush(self, style, tables, **options)
        if audit.TABLE not in tables:
            return statements
        return [*audit.SQLITE_DROP, *statements, *audit.SQLITE_TRIGGERS]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(operations, "sql_flush", flush_around_the_triggers)
        yield


@pytest.fixture(scope="session")
def metadata_server():
    server = MetadataServer(port=METADATA_PORT).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def signing_key():
    return SigningKey("test-key-1")


@pytest.fixture(scope="session")
def certs_server(signing_key):
    server = CertsServer([signing_key]).start()
    yield server
    server.stop()


@pytest.fixture
def receiver():
    server = CallbackReceiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mail_server():
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp(settings, mail_server):
    """A real SMTP server on a local port, with Django's SMTP backend pointed at it: what it
    received, parsed (`standins.smtp.Received`), is in `smtp.messages`, empty at the start."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = mail_server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    mail_server.clear()
    mail_server.refuse = False
    yield mail_server
    mail_server.refuse = False


@pytest.fixture
def slack_app(settings):
    """The Slack stand-in, with the app's Slack settings pointed at it (Slack on); no
    interaction remembered from an earlier test."""
    from django.core.cache import cache

    server = SlackServer().start()
    settings.APPROVALS_SLACK_BOT_TOKEN = SLACK_BOT_TOKEN
    settings.APPROVALS_SLACK_SIGNING_SECRET = SLACK_SIGNING_SECRET
    settings.APPROVALS_SLACK_API_URL = server.api_url
    cache.clear()
    yield server
    server.stop()


@pytest.fixture
def minter(signing_key):
    return TokenMinter(signing_key, AUDIENCE)


@pytest.fixture(autouse=True)
def approvals_settings(settings, receiver, certs_server, metadata_server):
    """Every test runs against the stand-ins, with Google callback auth on."""
    settings.APPROVALS_BASE_URL = "http://testserver"
    settings.APPROVALS_OIDC_AUDIENCE = AUDIENCE
    settings.APPROVALS_OIDC_CERTS_URL = certs_server.url
    settings.APPROVALS_ALLOWED_INVOKERS = [INVOKER]
    settings.APPROVALS_API_TOKEN = API_TOKEN
    settings.APPROVALS_CALLBACK_URL_PREFIXES = [receiver.base_url + "/v1/"]
    settings.APPROVALS_CALLBACK_AUTH = "google"
    settings.APPROVALS_DEFAULT_TIMEOUT_SECONDS = 86400
    # Hashing test passwords with the production hasher costs half a second per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    approvals_google.reset_sessions()
    yield settings
    approvals_google.reset_sessions()


@pytest.fixture
def approvers_group(db):
    group, _ = Group.objects.get_or_create(name="Approvers")
    group.permissions.add(
        Permission.objects.get(
            codename="decide_approvalrequest", content_type__app_label="approvals"
        )
    )
    return group


@pytest.fixture
def make_user(db, approvers_group, django_user_model):
    def make(username, email=None, approver=True, **extra):
        user = django_user_model.objects.create_user(
            username,
            email if email is not None else f"{username}@example.com",
            "pw-" + username,
            **extra,
        )
        if approver:
            user.groups.add(approvers_group)
        return user

    return make


@pytest.fixture
def manager(make_user):
    return make_user("manager")


@pytest.fixture
def finance(make_user):
    """A "finance" group of two approvers, fiona and felix (a group named as assignee or as an
    escalation target)."""
    group = Group.objects.create(name="finance")
    for name in ("fiona", "felix"):
        make_user(name).groups.add(group)
    return group


@pytest.fixture
def registration_body(receiver):
    """A valid registration body for a new execution; keyword arguments override fields (None
    leaves a field out)."""
    counter = iter(range(1, 10_000))

    def build(**fields):
        body = {
            "callback_url": receiver.callback_url(f"exec-{next(counter)}"),
            "title": "Team offsite",
            "requester_email": "alice@example.com",
            "amount": "120.50",
            "currency": "EUR",
            **fields,
        }
        return {key: value for key, value in body.items() if value is not None}

    return build


@pytest.fixture
def register(client, registration_body):
    """Register an approval through the API with the static token; returns the JSON answer."""

    def post(**fields):
        response = client.post(
            "/api/approvals",
            registration_body(**fields),
            content_type="application/json",
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
        assert response.status_code in (200, 201), response.content
        return response.json()

    return post


@pytest.fixture
def auditor(make_user):
    """A member of "Auditors" with staff status, as the README sets them up. The group comes
    from a data migration; a transactional test run earlier may have flushed it, hence
    get_or_create."""
    group, _ = Group.objects.get_or_create(name="Auditors")
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="approvals",
            codename__in=["view_approvalrequest", "view_decision", "view_auditevent"],
        )
    )
    user = make_user("auditor", approver=False, is_staff=True)
    user.groups.add(group)
    return user


@pytest.fixture
def signed_in_auditor(client, auditor):
    """The auditor, signed in on the test's `client`."""
    client.force_login(auditor)
    return auditor


def decide_page(client, user, request_id, outcome="approved", comment=""):
    """`user` decides through the request page's form, confirmation included."""
    client.force_login(user)
    return client.post(
        f"/approvals/{request_id}/decide",
        {"outcome": outcome, "comment": comment, "confirmed": "on"},
    )


def waiting_ids(client, user) -> list[str]:
    """What the inbox's "Waiting for me" lists for `user` (its first page)."""
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    return [str(row.pk) for row in response.context["page"].rows]
