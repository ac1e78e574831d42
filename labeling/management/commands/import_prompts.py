from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ServiceError
from labeling.services.imports import FORMATS, PII_MODES, ImportRejected, prompts_import

from .import_completions import add_batch_arguments, batch_settings, report_rejection


class Command(BaseCommand):
    help = (
        "Import prompts from JSONL or CSV (text, category, origin_user, metadata), with prompt hygiene: "
        "dedup by long common prefix, a cap per origin user, split by origin user, PII flagged or scrubbed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", choices=FORMATS, help="default: from the file name (.csv or .jsonl)")
        parser.add_argument("--pii", choices=PII_MODES, default="flag")
        parser.add_argument(
            "--demonstration-batch",
            metavar="NAME",
            help="make a demonstration batch of the prompts this import creates",
        )
        add_batch_arguments(parser, kinds=("demonstration",))

    def handle(self, *args: Any, path: Path, **options: Any) -> None:
        fmt = options["format"] or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
        batch = (
            batch_settings(options, options["demonstration_batch"])
            if options["demonstration_batch"]
            else None
        )
        try:
            with path.open("rb") as file:
                result = prompts_import(file=file, format=fmt, pii=options["pii"], demonstration_batch=batch)
        except ImportRejected as exc:
            raise report_rejection(self, exc) from exc
        except (ServiceError, OSError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from exc
        self.stdout.write(
            f"{result.lines} lines: {result.created} prompts created, {result.duplicates} duplicates skipped, "
            f"{result.capped} over the per-user cap skipped; PII flagged {result.pii_flagged}, "
            f"scrubbed {result.pii_scrubbed}."
        )
        if result.batch is not None:
            self.stdout.write(
                f"batch {result.batch.pk}: {result.batch.name} ({result.batch.tasks.count()} tasks)"
            )
