"""The people's pages (namespace `approvals`, stitched together in `approvals/urls.py`)."""

from django.urls import path

from approvals.web import notices, tokens, views

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("approvals/<uuid:approval_id>/", views.detail, name="detail"),
    path("approvals/<uuid:approval_id>/details.json", views.details_json, name="details-json"),
    path("approvals/<uuid:approval_id>/decide", views.decide, name="decide"),
    path("approvals/<uuid:approval_id>/reassign", views.reassign, name="reassign"),
    path("approvals/bulk-decide", views.bulk_decide, name="bulk-decide"),
    path(
        "approvals/<uuid:approval_id>/email-decision",
        views.email_decision,
        name="email-decision",
    ),
    path("delegations/", views.delegations, name="delegations"),
    path("delegations/<int:delegation_id>/end", views.end_delegation, name="end-delegation"),
    path("settings/notifications/", notices.notice_settings, name="notice-settings"),
    path("tokens/", tokens.personal_tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke", tokens.revoke_personal_token, name="revoke-token"),
]
