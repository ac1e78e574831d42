from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ServiceError
from labeling.services.imports import PII_MODES, ImportRejected, completions_import


def add_batch_arguments(parser: CommandParser, *, kinds: tuple[str, ...]) -> None:
    parser.add_argument("--kind", choices=kinds, default=kinds[0])
    parser.add_argument("--overlap", type=int, default=1, help="labels wanted per task")
    parser.add_argument("--lease-minutes", type=int, default=30)
    parser.add_argument("--instructions", default="", help="shown to the labelers")
    parser.add_argument("--labeler", action="append", default=[], metavar="USERNAME", help="repeat for more")
    parser.add_argument("--group", action="append", default=[], metavar="GROUP", help="repeat for more")
    parser.add_argument("--paused", action="store_true", help="create the batch paused")


def batch_settings(options: dict, name: str) -> dict:
    User = get_user_model()
    users = list(User.objects.filter(username__in=options["labeler"]))
    groups = list(Group.objects.filter(name__in=options["group"]))
    missing = sorted(set(options["labeler"]) - {u.username for u in users})
    missing += sorted(set(options["group"]) - {g.name for g in groups})
    if missing:
        raise CommandError(f"no such user or group: {', '.join(missing)}")
    return {
        "name": name,
        "kind": options["kind"],
        "overlap": options["overlap"],
        "lease_minutes": options["lease_minutes"],
        "instructions": options["instructions"],
        "labelers": users,
        "groups": groups,
        "status": "paused" if options["paused"] else "active",
    }


def report_rejection(command: BaseCommand, exc: ImportRejected) -> CommandError:
    for error in exc.errors:
        command.stderr.write(str(error))
    if exc.total > len(exc.errors):
        command.stderr.write(f"... and {exc.total - len(exc.errors)} more")
    return CommandError(f"{exc.total} error(s): nothing was imported.")


class Command(BaseCommand):
    help = (
        "Import model outputs from JSONL ({'prompt' or 'prompt_id', 'completions': [2..9], 'model'} per line) "
        "and make a ranking (or evaluation) batch of them. Re-importing the same file adds nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--batch-name", required=True)
        parser.add_argument("--pii", choices=PII_MODES, default="flag", help="for prompts created from text")
        add_batch_arguments(parser, kinds=("ranking", "evaluation"))

    def handle(self, *args: Any, path: Path, **options: Any) -> None:
        settings = batch_settings(options, options["batch_name"])
        try:
            with path.open("rb") as file:
                result = completions_import(file=file, batch=settings, pii=options["pii"])
        except ImportRejected as exc:
            raise report_rejection(self, exc) from exc
        except (ServiceError, OSError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from exc
        self.stdout.write(
            f"{result.lines} lines: {result.tasks_created} tasks, {result.completions_created} completions and "
            f"{result.prompts_created} prompts created; {result.already_imported} lines already imported."
        )
        if result.batch is not None:
            self.stdout.write(f"batch {result.batch.pk}: {result.batch.name} ({result.batch.status})")
