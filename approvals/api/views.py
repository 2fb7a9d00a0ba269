"""The JSON API that workflows call (contract: "API").

Authenticate, validate, call a service, answer.

Every answer is JSON, errors included (`{"error": "...", "fields": {...}}`), and nothing a caller
can send leads to a 500.
"""

import json
from functools import wraps
from pathlib import Path

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from approvals import permissions, registration, services, wire
from approvals.identity import callers
from approvals.models import ApprovalRequest
from approvals.wire import error

MAX_BODY_BYTES = 256 * 1024


def api_view(*methods, kinds=callers.WORKFLOWS):
    """Check the method and the caller, and that it is of one of `kinds` (`callers.WORKFLOWS`,
    `PEOPLE` or `EVERYONE`); hand the view the authenticated caller."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                return error(
                    405, f"Use {' or '.join(methods)}.", headers={"Allow": ", ".join(methods)}
                )
            try:
                caller = callers.authenticate(request.headers.get("Authorization", ""))
                callers.check_kind(caller, kinds)
            except callers.CallerRefused as refused:
                description = refused.message.replace('"', "'")
                params = [f'error="{refused.error_code}"'] if refused.error_code else []
                params.append(f'error_description="{description}"')
                challenge = "Bearer " + ", ".join(params)
                headers = {"WWW-Authenticate": challenge} if refused.status == 401 else {}
                if refused.status == 503:
                    headers["Retry-After"] = "5"
                return error(refused.status, refused.message, headers=headers)
            return view(request, caller, *args, **kwargs)

        return wrapper

    return decorate


def _reject_constant(name):
    raise ValueError(f"{name} is not allowed in JSON")


def _json_body(request):
    """The decoded JSON body, or an error response."""
    content_type = request.content_type or ""
    if content_type != "application/json":
        return None, error(415, "Send the body as JSON with Content-Type: application/json.")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        return None, error(413, f"The body must be at most {MAX_BODY_BYTES // 1024} KiB.")
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        return None, error(413, f"The body must be at most {MAX_BODY_BYTES // 1024} KiB.")
    try:
        # Decoded as json.loads decodes bytes, so that the depth is checked on the same text.
        text = body.decode(json.detect_encoding(body), "surrogatepass")
        registration.check_depth(text)
        return json.loads(text, parse_constant=_reject_constant), None
    except registration.InvalidRegistration as invalid:
        return None, error(400, invalid.message, invalid.errors)
    except (ValueError, RecursionError) as problem:
        return None, error(400, f"The body is not valid JSON: {str(problem)[:200]}")


@api_view("POST")
def approvals(request, caller):
    data, problem = _json_body(request)
    if problem:
        return problem
    try:
        parsed = registration.parse(data)
    except registration.InvalidRegistration as invalid:
        return error(400, invalid.message, invalid.errors)
    try:
        registered = services.register(parsed, caller.name)
    except services.CallbackUrlTaken:
        return error(409, "This callback_url is already registered by another caller.")
    body = wire.registered(registered.approval)
    return JsonResponse(body, status=201 if registered.created else 200)


def _find(approval_id, caller: callers.Caller) -> ApprovalRequest | None:
    """The approval with this id that the caller may read, or None: a workflow's own, one the
    person may see (any other does not exist for them)."""
    if caller.kind == callers.PERSON:
        readable = permissions.requests_visible(caller.user)
    else:
        readable = permissions.requests_of_caller(caller.name)
    found = readable.filter(pk=approval_id)
    return found.prefetch_related("decisions").first()


NO_SUCH_REQUEST = "There is no approval request with this id."


@api_view("GET", kinds=callers.EVERYONE)
def approval(request, caller, approval_id):
    approval = _find(approval_id, caller)
    if approval is None:
        return error(404, NO_SUCH_REQUEST)
    services.expire_when_seen(approval, seen_by="api")
    return JsonResponse(wire.state(approval))


@api_view("POST")
def cancel(request, caller, approval_id):
    try:
        services.cancel(approval_id, caller.name)
    except ApprovalRequest.DoesNotExist:
        return error(404, NO_SUCH_REQUEST)
    except services.AlreadyDecided as decided:
        return JsonResponse(
            {"error": str(decided), **wire.state(_find(approval_id, caller))}, status=409
        )
    return JsonResponse(wire.state(_find(approval_id, caller)))


@csrf_exempt
def not_found(request, *args, **kwargs):
    return error(404, "No such API endpoint; see the README's API section.")


# The OpenAPI description of this API, read once; `servers` is filled in per answer.
OPENAPI_DOCUMENT = json.loads(Path(__file__).with_name("openapi.json").read_text(encoding="utf-8"))


@csrf_exempt
def openapi(request):
    """The OpenAPI 3.1 description of the API (approvals/api/openapi.json), for anyone to read."""
    if request.method != "GET":
        return error(405, "Use GET.", headers={"Allow": "GET"})
    document = {**OPENAPI_DOCUMENT, "servers": [{"url": settings.APPROVALS_BASE_URL}]}
    return JsonResponse(document)
