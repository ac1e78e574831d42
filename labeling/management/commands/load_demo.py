from django.core.management.base import BaseCommand

from labeling.demo import DEMO_USERS, demo_load


class Command(BaseCommand):
    help = "Load the local demo's users, prompts, demonstrations and batches (safe to run again)."

    def handle(self, *args, **options):
        created = demo_load()
        self.stdout.write(", ".join(f"{n} {kind} created" for kind, n in created.items()))
        for username, password, role, _ in DEMO_USERS:
            self.stdout.write(f"  {role:12} {username} / {password}")
