from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from labeling.errors import ServiceError
from labeling.roles import role_add
from labeling.vocab import ROLES


class Command(BaseCommand):
    help = "Give a user a role: labeler, 'batch admin' or researcher."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=ROLES)

    def handle(self, *args, username: str, role: str, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named '{username}'") from None
        try:
            added = role_add(user=user, role=role)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{username} is now a {role}." if added else f"{username} was already a {role}.")
