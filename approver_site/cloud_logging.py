"""How the app's log lines reach Cloud Logging when it runs on Cloud Run.

Settings switch this on when Cloud Run's environment is there (`K_SERVICE` in a service,
`CLOUD_RUN_JOB` in a job, the names google-cloud-logging itself looks for):

* `structured_handler()`: the root handler, google-cloud-logging's `StructuredLogHandler`, which
  writes one JSON object per line to stdout, synchronously. Cloud Run turns each line into a log
  entry (`severity`, `jsonPayload` with the `json_fields` a line carries, the trace). The library's
  other handler sends entries from a background thread, which Cloud Run's CPU throttling between
  requests can starve; this one has nothing to lose. It needs the project id to write the trace
  as `projects/PROJECT/traces/TRACE_ID`, the form that links a line to its request.
* `trace_middleware`: google-cloud-logging's Django `RequestMiddleware`, which remembers the
  request being served in a thread-local so that every line logged while serving it carries its
  trace (from `traceparent` or `X-Cloud-Trace-Context`, which Cloud Run sets) and its method and
  URL. The library never forgets the request; here it is forgotten when Django has finished with
  it (`request_finished`, after Django's own line for a 4xx or 5xx answer, which keeps the
  trace), so a thread's later lines, and its memory, keep nothing of a finished request.

Importing google-cloud-logging takes most of a second, which is why nothing imports this module
off Cloud Run.
"""

from django.core.signals import request_finished
from google.cloud.logging_v2.handlers import StructuredLogHandler
from google.cloud.logging_v2.handlers.middleware import RequestMiddleware

from approvals.identity import google


def structured_handler(stream=None) -> StructuredLogHandler:
    """The root log handler on Cloud Run: JSON lines with the project id for traces."""
    return StructuredLogHandler(project_id=google.project_id(), stream=stream)


def trace_middleware(get_response):
    """The library's RequestMiddleware, with the request forgotten once Django is done with it."""
    request_finished.connect(_forget_request, dispatch_uid="approver_site.cloud_logging")
    return RequestMiddleware(get_response)


def _forget_request(**kwargs):
    # Without get_response the library's middleware only stores what it is given.
    RequestMiddleware(None)(None)
