"""The JSON API's URLs (namespace `approvals`, stitched together in `approvals/urls.py`)."""

from django.urls import path, re_path

from approvals.api import decisions, views

urlpatterns = [
    # GET lists what awaits a person (`decisions.awaiting`); POST registers (`views.approvals`).
    path("api/approvals", decisions.collection, name="api-approvals"),
    path("api/approvals/<uuid:approval_id>", views.approval, name="api-approval"),
    path("api/approvals/<uuid:approval_id>/cancel", views.cancel, name="api-cancel"),
    path("api/approvals/<uuid:approval_id>/decision", decisions.decision, name="api-decision"),
    path("api/openapi.json", views.openapi, name="api-openapi"),
    # Last: any other address under /api/ answers JSON, never an HTML page.
    re_path(r"^api/", views.not_found),
]
