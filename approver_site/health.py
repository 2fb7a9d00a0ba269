"""Health endpoints for Cloud Run's probes: `/healthz` (the process answers) and `/readyz` (the
database answers a trivial query; `503` when it does not).

They are answered by the first middleware, before anything else runs, because probes are not
people: no HTTPS redirect (probes reach the container over plain HTTP), no `ALLOWED_HOSTS` check
(whatever Host header a probe sends must not turn into a 400), no session, no sign-in, no trace
middleware and no log line when all is well. Only a failed `/readyz` logs one warning that says
why, since that is what an operator looks for when a revision does not start.

Both paths are public, like the rest of the container's URLs: they answer `ok` or `unavailable`
and nothing else.
"""

import psycopg
from django.db import Error as DatabaseError
from django.db import connection
from django.http import HttpResponse
from django.utils.log import log_response

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"


def _answer(status: int, text: str) -> HttpResponse:
    response = HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def database_problem() -> str | None:
    """Why the database cannot answer `SELECT 1` right now, or None when it does."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except (DatabaseError, psycopg.Error) as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        return f"{type(error).__name__}: {first_line}"[:300]
    return None


class HealthCheckMiddleware:
    """Answers GET and HEAD on `/healthz` and `/readyz`; first in `MIDDLEWARE`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        if request.path_info == HEALTH_PATH:
            return _answer(200, "ok")
        if request.path_info == READY_PATH:
            return self._ready(request)
        return self.get_response(request)

    def _ready(self, request) -> HttpResponse:
        problem = database_problem()
        if problem is None:
            return _answer(200, "ok")
        response = _answer(503, "unavailable")
        # One line with the reason, instead of Django's generic "Service Unavailable: /readyz".
        log_response(
            "Not ready: the database did not answer (%s)",
            problem,
            response=response,
            request=request,
            level="warning",
        )
        return response
