"""The JSON API's URLs (namespace `approvals`, stitched together in `approvals/urls.py`)."""

from django.urls import path, re_path

from approvals.api import views

urlpatterns = [
    path("api/approvals", views.approvals, name="api-approvals"),
    path("api/approvals/<uuid:approval_id>", views.approval, name="api-approval"),
    path("api/approvals/<uuid:approval_id>/cancel", views.cancel, name="api-cancel"),
    path("api/openapi.json", views.openapi, name="api-openapi"),
    # Last: any other address under /api/ answers JSON, never an HTML page.
    re_path(r"^api/", views.not_found),
]
