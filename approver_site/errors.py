"""What people and callers see when something fails.

Django calls `server_error` (the project's `handler500`) for every exception nothing else caught,
in a view or in a middleware (sessions and sign-in read the database before any view runs), while
the exception is being handled. A database that cannot be reached is an outage, not a bug: the
answer is `503` with `Retry-After`, so callers (Workflows retries HTTP calls) and people try again
once it is back; everything else stays a `500`. Under `/api/` the answer is JSON like every other
API answer; elsewhere a page.

Nothing here touches the database: the pages are standalone templates rendered without a
request, so no context processor (the signed-in user, messages) runs. Django's `django.request`
logger already logs the exception once at ERROR level; it is not logged again here.
"""

import sys

import psycopg
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template import loader

from approvals.wire import error

RETRY_AFTER_SECONDS = 30

# psycopg's own errors too, in case one escapes Django's wrapper.
UNAVAILABLE = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)

API_UNAVAILABLE = (
    "The database is unavailable for a moment. Nothing was half written: send the same request "
    "again after Retry-After seconds (registration and cancel are safe to repeat)."
)
API_FAILED = "Something went wrong on the server. Nothing was half written; try again later."


def database_unavailable(exception: BaseException | None) -> bool:
    """Whether the exception, or one it was raised from or while handling, says the database
    cannot be reached."""
    seen = set()
    while exception is not None and id(exception) not in seen:
        if isinstance(exception, UNAVAILABLE):
            return True
        seen.add(id(exception))
        exception = exception.__cause__ or exception.__context__
    return False


def server_error(request):
    """The project's handler500: 503 while the database is away, 500 otherwise."""
    unavailable = database_unavailable(sys.exc_info()[1])
    status = 503 if unavailable else 500
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if unavailable else {}
    if request.path_info.startswith("/api/"):
        return error(status, API_UNAVAILABLE if unavailable else API_FAILED, headers=headers)
    page = loader.get_template("503.html" if unavailable else "500.html").render()
    response = HttpResponse(page, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def bad_request(request, exception):
    """The project's handler400 (e.g. a Host header outside DJANGO_ALLOWED_HOSTS): JSON under
    /api/, like every API answer; Django's own page elsewhere."""
    if request.path_info.startswith("/api/"):
        return error(400, "Bad request: check the Host header and the request line.")
    from django.views.defaults import bad_request as django_bad_request

    return django_bad_request(request, exception)
