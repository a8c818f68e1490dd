"""Pre-built SQL for the hottest paths (invoice creation, outbound events): INSERTs, and rows read back as models.

The ORM compiles every `save()`/`bulk_create()` anew, which on a request that writes a handful of small rows
costs more Python time than the database spends on them, and one round trip per statement. `insert_for(Model)`
builds the column list and a row placeholder once per model from its metadata; `row_values(insert, obj)` takes
each value through the same field methods the ORM uses (`pre_save` fills auto_now/auto_now_add, and
`get_db_prep_save` adapts JSON, decimals, arrays), so a field added to a model is written without touching this
code. Callers combine the pieces into one statement (several INSERTs as data-modifying CTEs, see
`invoices.services` and `webhooks.services.event_record`). Only identifiers from model metadata are interpolated
into SQL; every value is a bound parameter.

Not supported (refused when the statement is built, so a test fails rather than a row being written wrongly):
fields with `db_default` and fields with a custom SQL placeholder.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.db import connection
from django.db.models import NOT_PROVIDED, Model


@dataclass(frozen=True)
class Insert:
    table: str  # quoted table name
    fields: tuple  # the concrete fields written, in column order (database-generated keys are left out)
    columns: str  # "(col, col, …)", quoted
    row: str  # "(%s, %s, …)": one row's placeholders
    returning: tuple  # database-generated fields (an AutoField primary key), to read back with RETURNING


@cache
def insert_for(model: type[Model]) -> Insert:
    meta = model._meta
    quote = connection.ops.quote_name
    generated = tuple(meta.db_returning_fields) if meta.auto_field else ()
    fields = tuple(f for f in meta.concrete_fields if f not in generated)
    for field in fields:
        if field.db_default is not NOT_PROVIDED or hasattr(field, "get_placeholder"):
            raise TypeError(f"{meta.label}.{field.name}: not supported by paytrust.sql (use the ORM)")
    return Insert(
        table=quote(meta.db_table),
        fields=fields,
        columns="(" + ", ".join(quote(f.column) for f in fields) + ")",
        row="(" + ", ".join(["%s"] * len(fields)) + ")",
        returning=generated,
    )


def row_values(insert: Insert, obj: Model) -> list:
    """Bound parameters for one row of `obj` (fills its auto_now/auto_now_add fields, as `save()` would)."""
    return [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in insert.fields]


def mark_saved(obj: Model) -> None:
    """Flag an instance inserted through this module as loaded from the database (as `save()` does)."""
    obj._state.adding = False
    obj._state.db = connection.alias


def instance_from_row(model: type[Model], fields, values) -> Model:
    """A model instance from a row of `fields` columns read by hand-written SQL (as the ORM would build it)."""
    converted = []
    for field, value in zip(fields, values, strict=True):
        for converter in field.get_db_converters(connection):
            value = converter(value, field, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)
