"""The project's URLs: the approvals app, sign-in and the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from approvals.identity.signin import LoginView, PasswordChangeView

# Database outages answer 503 with Retry-After (JSON under /api/), other failures 500.
handler500 = "approver_site.errors.server_error"
handler400 = "approver_site.errors.bad_request"

admin.site.site_header = "Approver administration"
admin.site.site_title = "Approver"

urlpatterns = [
    # Sign-in and password change, braked (identity/signin.py). No password reset by e-mail:
    # administrators reset passwords in the admin or with `manage.py changepassword`.
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password_change/", PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    # One page of each for everyone; the admin's go there.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/password_change/", RedirectView.as_view(pattern_name="password_change")),
    path("admin/password_change/done/", RedirectView.as_view(pattern_name="password_change_done")),
    path("admin/", admin.site.urls),
    path("", include("approvals.urls")),
]
