from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from labeling.errors import ServiceError
from labeling.roles import role_remove
from labeling.vocab import ROLES


class Command(BaseCommand):
    help = "Take a role from a user: labeler, 'batch admin' or researcher."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=ROLES)

    def handle(self, *args, username: str, role: str, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named '{username}'") from None
        try:
            removed = role_remove(user=user, role=role)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"{username} is no longer a {role}." if removed else f"{username} was not a {role}."
        )
