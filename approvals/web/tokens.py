"""The person's personal access tokens: create one (shown once), list them, revoke one.

Thin: what a token is and when the API accepts it is `identity.tokens`.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from approvals.identity import tokens
from approvals.models import PersonalToken
from approvals.web import views
from approvals.web.forms import PersonalTokenForm

LISTED = 100


@login_required
@require_http_methods(["GET", "POST"])
def personal_tokens(request):
    """The page: the form for a new token and the person's tokens. After a POST that made one,
    the page shows its secret, this once (it is stored only as a digest), and is not redirected:
    a redirect would need the secret kept somewhere until the next page."""
    issued, status = None, 200
    form = PersonalTokenForm()
    if request.method == "POST":
        form = PersonalTokenForm(request.POST)
        if form.is_valid():
            try:
                issued = tokens.issue(
                    request.user, form.cleaned_data["name"], days=form.cleaned_data["days"]
                )
            except ValueError as refused:
                form.add_error(None, str(refused))
        if issued is None:
            messages.error(request, "No token was made: see below.")
            status = 400
        else:
            form = PersonalTokenForm()
    listed = list(tokens.tokens_of(request.user)[: LISTED + 1])
    context = {
        "form": form,
        "issued": issued,
        "tokens": listed[:LISTED],
        "more": len(listed) > LISTED,
        "listed": LISTED,
        "api_url": settings.APPROVALS_BASE_URL + reverse("approvals:api-approvals"),
    }
    return render(request, "approvals/tokens.html", context, status=status)


@login_required
@require_POST
def revoke_personal_token(request, token_id):
    """Revoke one of one's own tokens now; someone else's is a 404."""
    return views.end_own(
        request,
        lambda: tokens.revoke(token_id, request.user),
        PersonalToken.DoesNotExist,
        missing="There is no such token of yours.",
        already="That token was already revoked.",
        done=lambda revoked: (
            f"The token “{revoked.name}” ({revoked.prefix}…) is revoked: the API refuses it."
        ),
        back="approvals:tokens",
    )
