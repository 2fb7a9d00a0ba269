"""How failures are shown: words for the people who decide, the stored text for operators."""

import html
from urllib.parse import urlsplit

import pytest

from approvals import services
from approvals.models import ApprovalRequest, AuditEvent, DeliveryStatus

pytestmark = pytest.mark.django_db(transaction=True)

# What approvals/delivery.py stores after a failed attempt (status code, error text), and the
# words a manager reads instead. The stored texts are shaped like the real ones.
STORED_FAILURES = [
    pytest.param(
        None,
        "RefreshError: ('invalid_grant: Invalid JWT Signature.', {'error': 'invalid_grant', "
        "'error_description': 'Invalid JWT Signature.'})",
        "could not get the Google credentials",
        id="no access token",
    ),
    pytest.param(
        None,
        "TransportError: Failed to retrieve http://metadata.google.internal/computeMetadata/v1/"
        "instance/service-accounts/default/token from the Google Compute Engine metadata service",
        "could not get the Google credentials",
        id="no metadata server",
    ),
    pytest.param(
        503,
        'HTTP 503: {"error": {"code": 503, "message": "upstream connect error or disconnect"}}',
        "answered 503",
        id="503",
    ),
    pytest.param(
        403,
        'HTTP 403: {"error": {"code": 403, "message": "Permission '
        '\'workflows.callbacks.send\' denied on resource", "status": "PERMISSION_DENIED"}}',
        "refused the credentials",
        id="403",
    ),
    pytest.param(
        None,
        "ConnectionError: HTTPSConnectionPool(host='workflowexecutions.googleapis.com', port=443):"
        " Max retries exceeded with url: /v1/projects/p/locations/l/workflows/w",
        "could not reach the workflow's endpoint",
        id="unreachable",
    ),
    pytest.param(None, "timed out", "did not answer in time", id="timeout"),
    pytest.param(
        None,
        "KeyError: 'token_uri' <b>not bold</b>",
        "an administrator can see why in the service's log",
        id="anything else",
    ),
]


def callback_path(created) -> str:
    return urlsplit(ApprovalRequest.objects.get(pk=created["id"]).callback_url).path


def stored_failure(register, manager, receiver, state, status_code, error):
    """A request decided by `manager` whose callback failed as `error` says."""
    created = register()
    receiver.answers[callback_path(created)] = [503]
    services.decide(created["id"], manager, "approved", "")
    ApprovalRequest.objects.filter(pk=created["id"]).update(
        delivery_status=state, delivery_last_status_code=status_code, delivery_last_error=error
    )
    return created["id"]


@pytest.mark.parametrize("state", [DeliveryStatus.RETRYING, DeliveryStatus.FAILED])
@pytest.mark.parametrize(("status_code", "error", "words"), STORED_FAILURES)
def test_the_request_page_says_in_words_why_the_callback_failed(
    client, register, manager, receiver, state, status_code, error, words
):
    request_id = stored_failure(register, manager, receiver, state, status_code, error)
    client.force_login(manager)

    page = html.unescape(client.get(f"/approvals/{request_id}/").content.decode())

    assert words in page
    assert error.split(": ", 1)[-1] not in page
    if status_code is None:
        assert error.split(":")[0] not in page  # nor the exception's name
    assert "scripted failure" not in page  # what the first attempt's 503 came back with


def test_the_admin_still_shows_the_stored_error(client, admin_user, register, manager, receiver):
    error = "RefreshError: ('invalid_grant: Invalid JWT Signature.', {'error': 'invalid_grant'})"
    request_id = stored_failure(register, manager, receiver, DeliveryStatus.FAILED, None, error)
    client.force_login(admin_user)

    listing = html.unescape(client.get("/admin/approvals/approvalrequest/").content.decode())
    change = client.get(f"/admin/approvals/approvalrequest/{request_id}/change/")

    assert error[:120] in listing
    assert error in html.unescape(change.content.decode())


def test_the_message_after_a_decision_says_in_words_why_the_workflow_was_not_told(
    client, register, manager, receiver
):
    created = register()
    receiver.answers[callback_path(created)] = [503]
    client.force_login(manager)

    response = client.post(
        f"/approvals/{created['id']}/decide",
        {"outcome": "approved", "confirmed": "on"},
        follow=True,
    )

    [news] = [str(m) for m in response.context["messages"] if "workflow" in str(m)]
    assert "answered 503, an error on its side" in news
    assert "scripted failure" not in news and "HTTP 503:" not in news  # the endpoint's own text


@pytest.mark.parametrize(
    ("kind", "payload", "words"),
    [
        (
            AuditEvent.Kind.CALLBACK_FAILED,
            {"status_code": None, "error": "RefreshError: ('invalid_grant: account not found')"},
            "could not get the Google credentials",
        ),
        (
            AuditEvent.Kind.NOTIFY_FAILED,
            {
                "recipients": ["boss@example.com"],
                "error": "SMTPRecipientsRefused: {'boss@example.com': (550, b'5.1.1 unknown')}",
            },
            "The e-mail could not be sent",
        ),
    ],
)
def test_the_request_history_says_in_words_what_failed(
    client, register, manager, kind, payload, words
):
    created = register()
    AuditEvent.objects.create(request_id=created["id"], kind=kind, actor="system", payload=payload)
    client.force_login(manager)

    page = html.unescape(client.get(f"/approvals/{created['id']}/").content.decode())

    assert words in page
    assert payload["error"].split(": ", 1)[1] not in page
    assert payload["error"].split(":")[0] not in page
