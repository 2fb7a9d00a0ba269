"""The project's URLs: the approvals app, sign-in and the admin."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from approvals.signin import LoginView

# Database outages answer 503 with Retry-After (JSON under /api/), other failures 500.
handler500 = "approvals.errors.server_error"
handler400 = "approvals.errors.bad_request"

admin.site.site_header = "Approver administration"
admin.site.site_title = "Approver"

urlpatterns = [
    path("accounts/login/", LoginView.as_view(), name="login"),
    # One sign-in page for everyone, with its brake on wrong passwords; the admin's goes there.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include("approvals.urls")),
]
