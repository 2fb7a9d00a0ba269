"""A person's choice of the channels their notices reach them on (their settings page)."""

from django.utils import timezone

from approvals.models import Channel, ChannelPreference

NONE_LEFT = (
    "Keep at least one channel on: otherwise nobody could tell you of the requests waiting for you."
)


class PreferenceRefused(ValueError):
    """The choice cannot be kept; the message says why."""


def choose_channels(email_key: str, on: set[str], offered: set[str]) -> ChannelPreference:
    """Keep the channels turned off among `offered` (the ones that reach the person now): those
    not in `on`. A channel not offered keeps its choice; nobody turns every offered one off."""
    if not email_key:
        raise PreferenceRefused("Your account has no e-mail address, so nothing can reach you.")
    unknown = on - set(Channel.values)
    if unknown:
        raise PreferenceRefused(f"There is no channel called {sorted(unknown)[0]!r}.")
    if offered and not on & offered:
        raise PreferenceRefused(NONE_LEFT)
    preference, _ = ChannelPreference.objects.get_or_create(email_key=email_key)
    kept = set(preference.off) - offered
    preference.off = sorted(kept | (offered - on))
    preference.updated_at = timezone.now()
    preference.save(update_fields=["off", "updated_at"])
    return preference
