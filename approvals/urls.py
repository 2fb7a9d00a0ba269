"""URLs of the approvals app: the manager's pages and the workflows' JSON API."""

from django.urls import path, re_path

from . import api, views

app_name = "approvals"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("approvals/<uuid:request_id>/", views.detail, name="detail"),
    path("approvals/<uuid:request_id>/details.json", views.details_json, name="details-json"),
    path("approvals/<uuid:request_id>/decide", views.decide, name="decide"),
    path("approvals/bulk-decide", views.bulk_decide, name="bulk-decide"),
    path("delegations/", views.delegations, name="delegations"),
    path("delegations/<int:delegation_id>/end", views.end_delegation, name="end-delegation"),
    path("api/approvals", api.approvals, name="api-approvals"),
    path("api/approvals/<uuid:request_id>", api.approval, name="api-approval"),
    path("api/approvals/<uuid:request_id>/cancel", api.cancel, name="api-cancel"),
    path("api/openapi.json", api.openapi, name="api-openapi"),
    path(
        "approvals/<uuid:request_id>/email-decision",
        views.email_decision,
        name="email-decision",
    ),
    re_path(r"^api/", api.not_found),
]
