"""The rule for acceptable callback URLs, checked when a workflow registers.

The app sends its Google access token to that URL, so a foreign URL would leak the token.
"""

import re
from urllib.parse import urlsplit

from django.conf import settings

# The whole path of a Workflows callback URL.
CALLBACK_PATH_RE = re.compile(
    r"/v1/projects/(?P<project>[A-Za-z0-9][A-Za-z0-9._:-]*)"
    r"/locations/(?P<location>[A-Za-z0-9][A-Za-z0-9-]*)"
    r"/workflows/(?P<workflow>[A-Za-z0-9][A-Za-z0-9_-]*)"
    r"/executions/(?P<execution>[A-Za-z0-9][A-Za-z0-9_-]*)"
    r"/callbacks/(?P<callback>[A-Za-z0-9][A-Za-z0-9_-]*)"
)


def callback_url_problem(url: str) -> str | None:
    """Why `url` is not an acceptable callback URL, or None when it is."""
    # Whitespace and control characters: urlsplit drops tabs and line breaks that requests then
    # sends (as %09...), so the URL checked would not be the URL called.
    if re.search(r"[\s\x00-\x1f\x7f-\x9f]", url):
        return "Must not contain spaces or control characters."
    prefixes = settings.APPROVALS_CALLBACK_URL_PREFIXES
    if not any(url.startswith(prefix) for prefix in prefixes):
        return "Must start with an allowed prefix: " + ", ".join(prefixes) + "."
    parts = urlsplit(url)
    if parts.query or parts.fragment or parts.username or parts.password:
        return "Must not carry a query, a fragment or credentials."
    if not CALLBACK_PATH_RE.fullmatch(parts.path):
        return (
            "Must be a Cloud Workflows callback URL: "
            ".../v1/projects/P/locations/L/workflows/W/executions/E/callbacks/C."
        )
    return None
