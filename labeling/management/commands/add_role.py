from labeling.management.role_command import RoleCommand
from labeling.roles import role_add


class Command(RoleCommand):
    help = "Give a user a role: labeler, 'batch admin' or researcher."
    change = role_add
    changed = "{username} is now a {role}."
    unchanged = "{username} was already a {role}."
