"""Security headers Django 5.2 does not set by itself: the Content Security Policy, and the
Cache-Control that keeps every page and JSON answer out of shared and browser caches."""

from django.conf import settings
from django.utils.cache import patch_cache_control


class ContentSecurityPolicyMiddleware:
    """Send `settings.CONTENT_SECURITY_POLICY` with every HTML answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class NoStoreMiddleware:
    """Mark every answer Django renders `Cache-Control: private, no-store`.

    Nearly every page shows someone's requests, amounts or decisions, and the rest (the sign-in,
    errors, redirects) gain nothing from a cache; one rule for all of them leaves no page to
    forget. Directives a view sets itself (Django's `never_cache`) are kept. The static files
    never come here: whitenoise, above this middleware, answers them with their own long-lived
    caching, and so does the probes' middleware for `/healthz` and `/readyz`.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        patch_cache_control(response, private=True, no_store=True)
        return response
