"""What add_role and remove_role share: find the user, call the role service, say what changed."""

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ServiceError
from core.roles import ROLES


class RoleCommand(BaseCommand):
    change: Callable[..., bool]  # role_add or role_remove: True when the user's roles changed
    changed: str  # messages, formatted with username and role
    unchanged: str

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", choices=ROLES)

    def handle(self, *args: Any, username: str, role: str, **options: Any) -> None:
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named '{username}'") from None
        try:
            changed = type(self).change(user=user, role=role)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write((self.changed if changed else self.unchanged).format(username=username, role=role))
