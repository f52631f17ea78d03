from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from chat.models import ChatMessage
from chat.services import post_message

DEMO_USERS = ("alice", "bob")
DEMO_PASSWORD = "demo-password"  # local demo only: never run this on a server
WELCOME = "Welcome! Open this page as bob in another browser and say hello."


class Command(BaseCommand):
    help = "Create the demo users alice and bob (and a first message in 'lobby'). Idempotent."

    def handle(self, *args, **options):
        if not settings.DEMO_USERS_ALLOWED:
            raise CommandError("demo users have a published password: local settings only")
        User = get_user_model()
        users = []
        for username in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(DEMO_PASSWORD)  # again each time, so the printed sign-in works
            user.save()
            users.append(user)
        if not ChatMessage.objects.filter(room="lobby").exists():
            post_message("lobby", users[0], WELCOME)
        self.stdout.write(f"Sign in as {' or '.join(DEMO_USERS)}, password {DEMO_PASSWORD}")
