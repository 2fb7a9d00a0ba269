"""The brake on password guessing, built on django-axes, and the password change page.

Wrong passwords are counted in the database (axes' `AccessAttempt`), so every instance on Cloud
Run shares the counts, twice over:

* per account and client: 5 wrong passwords for one account from one client pause that pair for
  15 minutes (settings: `AXES_FAILURE_LIMIT`, `AXES_COOLOFF_TIME`). A stranger guessing from
  their own client never pauses the owner's.
* per client: 10 wrong passwords from one client, whatever the accounts, pause that client
  (`CLIENT_FAILURE_LIMIT`): password spraying is slowed.

The account is the one Django's sign-in form would look up (`account_name`), so every spelling of
it counts against it; the client is the address the app's own front end saw (`client_address`).
The check runs before any password is, so a paused pair learns nothing more, and one client's
guesses are checked one at a time, so a burst of simultaneous ones gets no more. A right password
clears that account's count from that client alone. The password change page checks the old
password through the same brake.
"""

import hashlib
import ipaddress
from contextlib import contextmanager

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Sum
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.views.decorators.debug import sensitive_variables

CLIENT_FAILURE_LIMIT = 10


def account_name(request, credentials) -> str:
    """The account a sign-in names, as one count: Django's form cleaning (surrounding spaces
    stripped, Unicode NFKC: a full-width `b` is `b`), then any case (`BOSS` is `boss`)."""
    user_model = get_user_model()
    raw = (credentials or {}).get(user_model.USERNAME_FIELD)
    if credentials is None:
        raw = request.POST.get(user_model.USERNAME_FIELD)
    max_length = user_model._meta.get_field(user_model.USERNAME_FIELD).max_length
    name = auth_forms.UsernameField(max_length=max_length).to_python(raw)
    return name.casefold().replace("\x00", "")[:max_length]  # the form refuses NUL; so does SQL


def client_address(request) -> str | None:
    """Who reached the app's own front end. Each proxy in front appends the address it was
    reached from to X-Forwarded-For; only the last `APPROVALS_TRUSTED_PROXY_HOPS` entries are
    theirs (the leftmost of them is the client), anything before is the client's own writing."""
    hops = settings.APPROVALS_TRUSTED_PROXY_HOPS
    forwarded = [
        entry.strip()
        for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if entry.strip()
    ]
    peer = request.META.get("REMOTE_ADDR", "")
    written = forwarded[-hops:] if hops and forwarded else [peer]
    return _one_client(written[0]) or _one_client(peer)


def _one_client(text: str) -> str | None:
    """An address as one client: an IPv6 one by its /64, which one household or host holds."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ipaddress.IPv6Network((int(address), 64), strict=False).network_address)
    return str(address)


class PasswordBrake(AxesStandaloneBackend):
    """Refuses a password sign-in while its account and client, or its client, are paused.
    Sign-ins without a password (IAP's assertion) are none of its business."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if password is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class SignInBrake(AxesDatabaseHandler):
    """Axes' database handler with a second limit, per client, and a right password clearing
    only its own account's count from its own client."""

    def get_failures(self, request, credentials=None) -> int:
        """The account's failures from this client; at least the limit once the client has
        failed `CLIENT_FAILURE_LIMIT` times, whatever the accounts. The counts come in the order
        of `AXES_LOCKOUT_PARAMETERS`: account and client, then client."""
        account, client = (
            attempts.aggregate(failures=Sum("failures_since_start"))["failures"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        if client >= CLIENT_FAILURE_LIMIT:
            return max(account, settings.AXES_FAILURE_LIMIT)
        return account

    def reset_user_attempts(self, request, credentials=None) -> int:
        """A success clears neither another client's guesses at the account nor this client's
        guesses at other accounts (else signing in to one's own account would reset spraying)."""
        account_from_here, _client = self.filter_user_attempts(request, credentials)
        count, _ = account_from_here.delete()
        return count


def paused_message(request) -> str:
    minutes = round(get_cool_off(request).total_seconds() / 60)
    return f"Too many wrong passwords. Try again in {minutes} minutes."


def paused_page(request, original_response=None, credentials=None) -> HttpResponse:
    """The page that was asked for (sign-in, password change), saying why nothing happens: 429.
    It names no cause (account or client), so it tells nobody whether an account exists."""
    message = paused_message(request)
    if isinstance(original_response, TemplateResponse):
        context = {**(original_response.context_data or {}), "paused": message}
        page = TemplateResponse(request, original_response.template_name, context, status=429)
        return page.render()
    return HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")


@contextmanager
def one_guess_at_a_time(request):
    """Check one client's passwords one after another, each seeing the count the last one left;
    else a burst of simultaneous guesses would all pass the check before any was counted.
    PostgreSQL's advisory lock on the client, held to the end of the transaction, serialises
    them across instances. SQLite, for local runs, has no such lock."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            client = f"approvals.signin {client_address(request)}".encode()
            key = int.from_bytes(hashlib.sha256(client).digest()[:8], "big", signed=True)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
        yield


class OneGuessAtATime:
    """A form view whose form, and so its password check, is validated under that lock."""

    def post(self, request, *args, **kwargs):
        form = self.get_form()
        with one_guess_at_a_time(request):
            valid = form.is_valid()
        return self.form_valid(form) if valid else self.form_invalid(form)


class LoginView(OneGuessAtATime, auth_views.LoginView):
    """Django's sign-in, one guess per client at a time."""


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's, checking the old password through `authenticate()`, so that wrong ones count
    toward the sign-in brake and a paused account and client cannot try more."""

    def __init__(self, user, *args, request=None, **kwargs):
        self.request = request
        super().__init__(user, *args, **kwargs)

    @sensitive_variables("old_password")
    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        user = authenticate(self.request, username=self.user.get_username(), password=old_password)
        if user is None or user.pk != self.user.pk:
            raise ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password


class PasswordChangeView(OneGuessAtATime, auth_views.PasswordChangeView):
    """Django's password change with the braked form. Accounts without a password (people
    signed in through IAP) are told so and can set none here."""

    form_class = PasswordChangeForm

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not request.user.has_usable_password():
            status = 200 if request.method in ("GET", "HEAD") else 403
            return TemplateResponse(
                request, self.template_name, {"no_password": True}, status=status
            )
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}
