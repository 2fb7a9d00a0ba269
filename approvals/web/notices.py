"""The person's notice settings: the channels that tell them of requests, and their choice.

Thin: which channels are on and reach whom is `notify.channels`; keeping the choice is
`services.choose_channels`.
"""

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from approvals import permissions, services
from approvals.models import Channel
from approvals.notify import channels

# What the page says of each channel: when it reaches the person, and when it does not yet.
WORDS = {
    Channel.EMAIL: ("To {email}.", "Your account has no e-mail address."),
    Channel.SLACK: (
        "Direct messages from the Approver app, to the Slack account with your e-mail address.",
        "",
    ),
    Channel.GOOGLE_CHAT: (
        "Cards in your direct message with the Approver app.",
        "Open Google Chat, find the Approver app and start a direct message with it: requests "
        "then come there too.",
    ),
}
NOT_SET_UP = "Not set up on this Approver."


@dataclass(frozen=True)
class Row:
    """One channel as the page lists it."""

    name: str
    label: str
    words: str
    offered: bool  # on, and reaching the person: they may choose it
    chosen: bool


def rows(user, chosen: set[str] | None = None) -> list[Row]:
    """Every channel, whether it reaches `user`, and whether it is on for them (or `chosen`)."""
    email_key = permissions.user_email(user)
    off = channels.turned_off(email_key)
    listed = []
    for channel in channels.all_channels():
        reached, unreached = WORDS[channel.name]
        offered = channel.is_on() and channel.reaches(email_key)
        if not channel.is_on():
            words = NOT_SET_UP
        else:
            words = (reached if offered else unreached).format(email=user.email.strip())
        picked = channel.name in chosen if chosen is not None else channel.name not in off
        listed.append(Row(channel.name, channel.label, words, offered, offered and picked))
    return listed


@login_required
@require_http_methods(["GET", "POST"])
def notice_settings(request):
    """The page, and the POST of its form: the channels ticked are on, the others off."""
    status, chosen = 200, None
    if request.method == "POST":
        chosen = set(request.POST.getlist("channels"))
        offered = {row.name for row in rows(request.user) if row.offered}
        try:
            services.choose_channels(permissions.user_email(request.user), chosen, offered)
        except services.PreferenceRefused as refused:
            messages.error(request, str(refused))
            status = 400
        else:
            messages.success(request, "Your notice settings are saved.")
            return redirect("approvals:notice-settings")
    context = {"rows": rows(request.user, chosen)}
    return render(request, "approvals/notice_settings.html", context, status=status)
