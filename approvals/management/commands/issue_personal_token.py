"""Issue a personal access token for a person, for the API's decisions (contract: "Deciding through
the API"): the token alone on stdout, once, so that a script can take it; what it is on stderr.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from approvals import wire
from approvals.identity import tokens


class Command(BaseCommand):
    help = (
        "Print a new personal access token for USERNAME (valid --days days, default "
        f"{tokens.DEFAULT_DAYS}); it is shown only this once."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--days",
            type=int,
            default=tokens.DEFAULT_DAYS,
            help=f"How long it is valid: 1 to {tokens.MAX_DAYS} days.",
        )
        parser.add_argument(
            "--name", default="manage.py issue_personal_token", help="What it is for."
        )

    def handle(self, *args, username, days, name, **options):
        users = get_user_model()
        try:
            user = users.objects.get_by_natural_key(username)
        except users.DoesNotExist:
            raise CommandError(f"There is no user {username!r}.") from None
        if not user.is_active:
            raise CommandError(f"{username} is inactive: the API would refuse the token.")
        try:
            issued = tokens.issue(user, name, days=days)
        except ValueError as invalid:
            raise CommandError(str(invalid)) from None
        self.stdout.write(issued.secret)
        self.stderr.write(
            f"Personal token {issued.token.prefix} for {username}, valid until "
            f"{wire.iso_utc(issued.token.expires_at)}. Keep it now: it is not shown again."
        )
