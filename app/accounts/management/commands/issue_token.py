from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.tokens import issue_token, parse_duration


class Command(BaseCommand):
    help = "Issue an API token for a user. The raw token is the last line of output, shown once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--create-user", action="store_true", help="Create the user if it does not exist."
        )
        parser.add_argument("--name", default="", help="A label for the token.")
        parser.add_argument(
            "--expires-in", metavar="DURATION", help="Lifetime such as 90s, 15m, 12h or 30d."
        )

    def handle(self, username, create_user, name, expires_in, **options):
        User = get_user_model()
        try:
            expires = parse_duration(expires_in) if expires_in else None
        except ValueError as error:
            raise CommandError(str(error)) from error
        user = User.objects.filter(username=username).first()
        if user is None:
            if not create_user:
                raise CommandError(f"No user {username!r}; pass --create-user to create one.")
            user = User.objects.create_user(username=username)  # no usable password
            self.stderr.write(f"Created user {username!r} (no password).")
        token, raw = issue_token(user, name=name, expires_in=expires)
        until = token.expires_at.isoformat() if token.expires_at else "never"
        self.stderr.write(f"Token {token.prefix} for {username!r}, expires: {until}.")
        self.stdout.write(raw)
