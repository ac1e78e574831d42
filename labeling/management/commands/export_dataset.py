import shutil
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import ServiceError
from labeling.models import SnapshotFormat, SnapshotKind
from labeling.services.export_filters import RANKING_MODES
from labeling.services.exports import snapshot_create, snapshot_path


class Command(BaseCommand):
    help = (
        "Export a dataset snapshot (recorded, immutable, under MEDIA_ROOT/datasets/) and copy it to --out. "
        "The same filters over the same data give the same bytes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--kind", required=True, choices=SnapshotKind.values)
        parser.add_argument(
            "--format",
            choices=SnapshotFormat.values,
            default=SnapshotFormat.STANDARD,
            help="conversational: TRL's conversational format (texts as chat messages); default standard",
        )
        parser.add_argument("--out", type=Path, help="where to copy the JSONL file")
        parser.add_argument(
            "--batch", action="append", type=int, default=[], metavar="ID", help="repeat for more"
        )
        parser.add_argument("--split", action="append", default=[], choices=["train", "valid", "test"])
        parser.add_argument("--category", action="append", default=[])
        parser.add_argument("--since", help="created at or after (date or ISO datetime, UTC)")
        parser.add_argument("--until", help="created before (date or ISO datetime, UTC)")
        parser.add_argument("--labeler", action="append", default=[], metavar="USERNAME")
        parser.add_argument(
            "--rankings", choices=RANKING_MODES, help="rm kinds: all rankings, or one consensus per task"
        )
        parser.add_argument("--min-agreement", type=float)
        parser.add_argument("--include-pii", action="store_true", help="keep prompts flagged as holding PII")

    def handle(self, *args, **options):
        filters = {
            "batches": options["batch"],
            "split": options["split"],
            "category": options["category"],
            "created_after": options["since"],
            "created_before": options["until"],
            "labelers": options["labeler"],
            "rankings": options["rankings"],
            "min_agreement": options["min_agreement"],
            "include_pii": options["include_pii"],
        }
        filters = {k: v for k, v in filters.items() if v not in (None, [], False)}
        try:
            snapshot = snapshot_create(kind=options["kind"], format=options["format"], filters=filters)
        except ServiceError as exc:
            raise CommandError(f"{exc.field}: {exc.message}" if exc.field else exc.message) from exc
        path = snapshot_path(snapshot)
        if options["out"]:
            options["out"].parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, options["out"])
            path = options["out"]
        self.stdout.write(
            f"snapshot {snapshot.pk}: {snapshot.row_count} rows, {snapshot.format}, sha256 {snapshot.sha256}, {path}"
        )
