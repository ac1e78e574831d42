"""Indexes for the data explorer (labeling/selectors/explorer.py): full-text search over prompts, outputs,
demonstrations and ranking comments (GIN over the same `to_tsvector` expression Django's SearchVector
writes, so the planner can use them), and (author or labeler, id) for the keyset pages filtered by labeler.

Postgres only: the SQLite demo searches with a plain `icontains` and needs none of them."""

from collections.abc import Callable

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

RunCode = Callable[[StateApps, BaseDatabaseSchemaEditor], None]  # what RunPython runs

SEARCHED = {
    "labeling_prompt": "text",
    "labeling_completion": "text",
    "labeling_demonstration": "text",
    "labeling_ranking": "comment",
}
BY_PERSON = {
    "labeling_ranking": "labeler_id",
    "labeling_demonstration": "author_id",
    "labeling_prompt": "author_id",
}

FORWARD = [
    *(
        f"CREATE INDEX IF NOT EXISTS {table}_search ON {table} "
        f"USING gin (to_tsvector('english'::regconfig, COALESCE({column}, ''::text)))"
        for table, column in SEARCHED.items()
    ),
    *(
        f"CREATE INDEX IF NOT EXISTS {table}_{column}_id ON {table} ({column}, id)"
        for table, column in BY_PERSON.items()
    ),
]
BACKWARD = [
    *(f"DROP INDEX IF EXISTS {table}_search" for table in SEARCHED),
    *(f"DROP INDEX IF EXISTS {table}_{column}_id" for table, column in BY_PERSON.items()),
]


def _on_postgres(statements: list[str]) -> RunCode:
    def run(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql, None)

    return run


class Migration(migrations.Migration):
    """Issue 15 item 4 (data explorer)."""

    dependencies = [
        ("labeling", "0015_submission_undo"),
    ]

    operations = [migrations.RunPython(_on_postgres(FORWARD), _on_postgres(BACKWARD))]
