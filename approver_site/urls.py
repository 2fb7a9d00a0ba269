"""The project's URLs: the approvals app, sign-in and the admin."""

from django.contrib import admin
from django.urls import include, path

# Database outages answer 503 with Retry-After (JSON under /api/), other failures 500.
handler500 = "approvals.errors.server_error"

admin.site.site_header = "Approver administration"
admin.site.site_title = "Approver"

urlpatterns = [
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include("approvals.urls")),
]
