from labeling.management.role_command import RoleCommand
from labeling.roles import role_remove


class Command(RoleCommand):
    help = "Take a role from a user: labeler, 'batch admin' or researcher."
    change = role_remove
    changed = "{username} is no longer a {role}."
    unchanged = "{username} was not a {role}."
