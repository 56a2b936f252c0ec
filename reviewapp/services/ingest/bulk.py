"""Bulk SQL: inserts (COPY on PostgreSQL, ids drawn beforehand), one-statement
updates of many rows, lookups by long IN lists cut to what the database takes."""
import json
from collections import defaultdict
from typing import Iterable, Iterator

from django.db import connection, models
from django.utils import timezone


def insert_with_ids(model, rows: list[dict], key: str, copy: bool) -> tuple[list[dict], dict]:
    """Insert rows; return them and {row[key]: id} for the rows now stored."""
    if copy:  # ids drawn beforehand: no query to learn them afterwards
        rows = [{"id": i} | r for i, r in zip(_next_ids(model, len(rows)), rows)]
        insert_rows(model, rows, copy)
        return rows, {r[key]: r["id"] for r in rows}
    insert_rows(model, rows, copy)
    return rows, ids_by(model, key, [r[key] for r in rows])


def _next_ids(model, count: int) -> list[int]:
    """count fresh primary keys from the table's sequence (PostgreSQL)."""
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                       [model._meta.db_table, model._meta.pk.column, count])
        return [row[0] for row in cursor.fetchall()]


def ids_by(model, key: str, values: list) -> dict:
    return {k: i for part in chunked(values)
            for k, i in model.objects.filter(**{f"{key}__in": part}).values_list(key, "id")}


def insert_rows(model, rows: list[dict], copy: bool) -> None:
    """Insert rows (dicts of field attnames): COPY on PostgreSQL, else bulk_create
    skipping rows that clash with stored ones."""
    if not rows:
        return
    if not copy:
        model.objects.bulk_create([model(**r) for r in rows], ignore_conflicts=True)
        return
    fields = [model._meta.get_field(name) for name in rows[0]]
    # Columns we do not set get their model default, as Django would give them.
    rest = [f for f in model._meta.concrete_fields if not f.primary_key and f not in fields]
    fixed = tuple(_db_value(f, timezone.now() if getattr(f, "auto_now", False) or
                            getattr(f, "auto_now_add", False) else f.get_default()) for f in rest)
    q = connection.ops.quote_name
    sql = (f"COPY {q(model._meta.db_table)} "
           f"({', '.join(q(f.column) for f in fields + rest)}) FROM STDIN")
    as_json = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    # The raw psycopg cursor: its errors are turned into Django's by hand.
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(sql) as out:
        for row in rows:
            values = list(row.values())
            for i in as_json:
                values[i] = _db_value(fields[i], values[i])
            out.write_row((*values, *fixed))


def _db_value(f, value):
    if isinstance(f, models.JSONField):
        return json.dumps(value, cls=f.encoder)
    return value


def chunked(items: Iterable, size: int | None = None) -> Iterator[list]:
    # SQLite caps the parameters of one statement; PostgreSQL takes long lists.
    items = list(items)
    size = size or (20000 if connection.vendor == "postgresql" else 900)
    for i in range(0, len(items), size):
        yield items[i:i + size]


def set_ids(model, key: str, columns: list[str], rows: list[tuple]) -> None:
    """UPDATE model SET columns = ... WHERE key = ..., for many rows in one statement.

    rows: (key value, column values...), all integers or None (ids).
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        by_values: dict[tuple, list] = defaultdict(list)
        for key_value, *values in rows:
            by_values[tuple(values)].append(key_value)
        for values, keys in by_values.items():
            for part in chunked(keys):
                model.objects.filter(**{f"{key}__in": part}).update(
                    **{model._meta.get_field(c).attname: v for c, v in zip(columns, values)})
        return
    q = connection.ops.quote_name
    table = q(model._meta.db_table)
    cols = [q(model._meta.get_field(name).column) for name in [key, *columns]]
    sql = (f"UPDATE {table} SET {', '.join(f'{c} = v.{c}' for c in cols[1:])} "
           f"FROM unnest({', '.join(['%s::bigint[]'] * len(cols))}) AS v({', '.join(cols)}) "
           f"WHERE {table}.{cols[0]} = v.{cols[0]}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(column) for column in zip(*rows)])


def bulk_create_with_ids(model, objs: list) -> None:
    if not objs:
        return
    model.objects.bulk_create(objs)
    if connection.features.can_return_rows_from_bulk_insert:
        return
    for obj in objs:  # older SQLite: no RETURNING, save one by one
        if obj.pk is None:
            obj.save(force_insert=True)
