"""Model instances from rows read with a plain cursor, and single-row INSERT and UPDATE, for the hot paths
(hand-out, submit, token authentication) whose statements are SQL.

What RawQuerySet does, without its per-call cost: it maps the cursor's columns to fields and builds the
converters again on every statement (0.2 to 0.3 ms of CPU each on this machine); here the converters of a
(model, columns) pair are found once. Converters matter: on SQLite datetimes come back as text, and on
Postgres Django reads jsonb as text that JSONField.from_db_value parses.
"""

from collections.abc import Sequence
from typing import Any, TypeVar, cast

from django.db import connection
from django.db.models import Field, Model
from django.db.models.base import DEFERRED

_plans: dict[tuple, tuple] = {}

M = TypeVar("M", bound=Model)


def _column(field: Field) -> str:
    assert field.column is not None  # a concrete field always has its column
    return field.column


def _plan(model: type[Model], attnames: tuple[str, ...]) -> tuple:
    """(position in the row of each concrete field or None, [(position, column, converters)])."""
    key = (connection.vendor, model, attnames)
    plan = _plans.get(key)
    if plan is None:
        at = {name: index for index, name in enumerate(attnames)}
        unknown = set(at) - {field.attname for field in model._meta.concrete_fields}
        if unknown:
            raise ValueError(f"{model.__name__} has no column {', '.join(sorted(unknown))}")
        order = tuple(at.get(field.attname) for field in model._meta.concrete_fields)
        converting = []
        for index, name in enumerate(attnames):
            column = cast(Field, model._meta.get_field(name)).get_col(model._meta.db_table)
            # The backend's converters, then the field's (as SQLCompiler.get_converters orders them).
            converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if converters:
                converting.append((index, column, converters))
        plan = _plans[key] = (order, tuple(converting))
    return plan


def instance(model: type[M], attnames: tuple[str, ...], values: Sequence[Any]) -> M:
    """A `model` instance as the database holds it, from `values` of the columns `attnames` (in that
    order); the model's other fields are deferred (read when first used, as with .only())."""
    order, converting = _plan(model, attnames)
    if converting:
        values = list(values)
        for index, column, converters in converting:
            value = values[index]
            for convert in converters:
                value = convert(value, column, connection)
            values[index] = value
    full = [DEFERRED if index is None else values[index] for index in order]
    return model.from_db(connection.alias, attnames, full)


_columns: dict[tuple, tuple[tuple[str, ...], str]] = {}


def columns(model: type[Model], alias: str) -> tuple[tuple[str, ...], str]:
    """(the attnames of every concrete field of `model`, the SQL list "alias.col1, alias.col2, ...")."""
    key = (connection.vendor, model, alias)
    found = _columns.get(key)
    if found is None:
        fields = model._meta.concrete_fields
        listed = ", ".join(f"{alias}.{connection.ops.quote_name(_column(field))}" for field in fields)
        found = _columns[key] = (tuple(field.attname for field in fields), listed)
    return found


# Model.save() for one row costs 0.2 to 0.3 ms of CPU (queryset, compiler, signals); these 0.05 ms. They
# send no pre_save/post_save signals: use them only for models nothing listens to (none in this project
# does, tests/labeling/test_rows.py checks that for the models the hot paths write).


def insert(obj: M) -> M:
    """INSERT a new instance (field defaults and auto_now_add applied, as save() does) and set its
    primary key from the database."""
    meta = type(obj)._meta
    fields = [field for field in meta.concrete_fields if field is not meta.auto_field]
    values = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
    table, quote = meta.db_table, connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(table)} ({', '.join(quote(_column(field)) for field in fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))})"
    )
    returning = connection.features.can_return_columns_from_insert
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {quote(_column(meta.pk))}" if returning else sql, values)
        obj.pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    obj._state.adding, obj._state.db = False, connection.alias
    return obj


def update(obj: Model, attnames: list[str]) -> None:
    """UPDATE the row of `obj` with its current values of `attnames` (save(update_fields=...) without
    the signals)."""
    meta = type(obj)._meta
    fields = [cast(Field, meta.get_field(name)) for name in attnames]  # columns, never a reverse relation
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {', '.join(f'{quote(_column(f))} = %s' for f in fields)}"
            f" WHERE {quote(_column(meta.pk))} = %s",
            [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in fields] + [obj.pk],
        )
