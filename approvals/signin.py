"""Sign-in with a brake: repeated wrong passwords for one account pause its sign-in for a while.

Counted per account name (lower-case) in the database, so every instance on Cloud Run shares the
count. A person who is paused is told for how long; the check runs before the password is
checked, so a paused account cannot be probed further.
"""

from datetime import timedelta

from django.contrib.auth import views as auth_views
from django.db import transaction
from django.utils import timezone

from .models import SignInThrottle

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)


def _name(username) -> str:
    return str(username or "").strip().lower()[:150]


def wait_needed(username) -> timedelta | None:
    """How long `username` must wait before trying again, or None."""
    row = SignInThrottle.objects.filter(username=_name(username)).first()
    if row is None or row.failures < MAX_FAILURES:
        return None
    remaining = row.window_started_at + WINDOW - timezone.now()
    return remaining if remaining > timedelta(0) else None


def record_failure(username) -> None:
    now = timezone.now()
    with transaction.atomic():
        row, _ = SignInThrottle.objects.select_for_update().get_or_create(
            username=_name(username), defaults={"window_started_at": now}
        )
        if now - row.window_started_at > WINDOW:
            row.failures, row.window_started_at = 0, now
        row.failures += 1
        row.save(update_fields=["failures", "window_started_at"])
        # Old windows are of no use; keep the table small.
        SignInThrottle.objects.filter(window_started_at__lt=now - 4 * WINDOW).delete()


def forget(username) -> None:
    SignInThrottle.objects.filter(username=_name(username)).delete()


class LoginView(auth_views.LoginView):
    """Django's sign-in, refusing with 429 while an account is paused."""

    def post(self, request, *args, **kwargs):
        wait = wait_needed(request.POST.get("username"))
        if wait is not None:
            minutes = max(1, round(wait.total_seconds() / 60))
            context = self.get_context_data(
                form=self.get_form(),
                throttled=f"Too many wrong passwords for this account. Try again in "
                f"{minutes} minute{'s' if minutes != 1 else ''}.",
            )
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        record_failure(form.data.get("username"))
        return super().form_invalid(form)

    def form_valid(self, form):
        forget(form.get_user().get_username())
        return super().form_valid(form)
