"""Pre-built SQL for the hottest paths (invoice creation, outbound events): INSERTs, and rows read back as models.

The ORM compiles every `save()`/`bulk_create()` anew, which on a request that writes a handful of small rows
costs more Python time than the database spends on them, and one round trip per statement. `insert_for(Model)`
builds the column list and a row placeholder once per model from its metadata; `row_values(insert, obj)` takes
each value through the same field methods the ORM uses (`pre_save` fills auto_now/auto_now_add, and
`get_db_prep_save` adapts JSON, decimals, arrays), so a field added to a model is written without touching this
code. Callers combine the pieces into one statement (several INSERTs as data-modifying CTEs, see
`invoices.services` and `webhooks.outbound.services.event_record`). Only identifiers from model metadata are interpolated
into SQL; every value is a bound parameter.

Not supported (refused when the statement is built, so a test fails rather than a row being written wrongly):
fields with `db_default` and fields with a custom SQL placeholder.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections, transaction
from django.db.backends.postgresql.base import TIMESTAMPTZ_OID, ServerBindingCursor
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.db.models import NOT_PROVIDED, Model
from psycopg import errors as pg_errors
from psycopg.pq import Format
from psycopg.types.numeric import Int8

from paytrust import tracing

PREPARE_THRESHOLD = 5  # executions of a statement on a connection before it is prepared (psycopg's default)


@dataclass(frozen=True)
class Insert:
    table: str  # quoted table name
    fields: tuple  # the concrete fields written, in column order (database-generated keys are left out)
    columns: str  # "(col, col, …)", quoted
    row: str  # "(%s, %s, …)": one row's placeholders
    returning: tuple  # database-generated fields (an AutoField primary key), to read back with RETURNING
    # "SELECT * FROM unnest(%s::bigint[], %s::varchar(255)[], …)": any number of rows from one array per column
    # (`column_arrays`), so the statement text and its parameter count do not depend on the number of rows.
    # None for models with array columns (unnest would flatten them).
    unnest: str | None


@cache
def insert_for(model: type[Model]) -> Insert:
    meta = model._meta
    quote = connection.ops.quote_name
    generated = tuple(meta.db_returning_fields) if meta.auto_field else ()
    fields = tuple(f for f in meta.concrete_fields if f not in generated)
    for field in fields:
        if field.db_default is not NOT_PROVIDED or hasattr(field, "get_placeholder"):
            raise TypeError(f"{meta.label}.{field.name}: not supported by paytrust.sql (use the ORM)")
    types = [f.db_type(connection) for f in fields]
    unnest = None
    if not any(t.endswith("]") for t in types):
        unnest = "SELECT * FROM unnest(" + ", ".join(f"%s::{t}[]" for t in types) + ")"  # noqa: S608
    return Insert(
        table=quote(meta.db_table),
        fields=fields,
        columns="(" + ", ".join(quote(f.column) for f in fields) + ")",
        row="(" + ", ".join(["%s"] * len(fields)) + ")",
        returning=generated,
        unnest=unnest,
    )


def row_values(insert: Insert, obj: Model) -> list:
    """Bound parameters for one row of `obj` (fills its auto_now/auto_now_add fields, as `save()` would)."""
    conn = connections[DEFAULT_DB_ALIAS]  # once, not through the thread-local proxy for every field
    return stable_params([f.get_db_prep_save(f.pre_save(obj, True), conn) for f in insert.fields])


def column_arrays(insert: Insert, objs) -> list[list]:
    """Parameters of `insert.unnest` for the rows of `objs`: one list per column."""
    rows = [row_values(insert, obj) for obj in objs]
    return [[row[i] for row in rows] for i in range(len(insert.fields))]


def stable_params(params: list) -> list:
    """Python ints as int8: psycopg would otherwise send int2/int4/int8 by value, and a prepared statement is
    keyed by its parameter types (a different amount would mean another statement to prepare). PostgreSQL
    casts int8 to a smaller integer column on INSERT (and refuses an overflow, as before)."""
    return [Int8(v) if type(v) is int else v for v in params]


def prepared_cursor():
    """A Django cursor (query logging, execute wrappers, database error translation) that binds parameters on the
    server, so psycopg prepares a statement once it has run it PREPARE_THRESHOLD times on a connection: it
    is parsed and planned once per pooled connection instead of on every call - for the statements of this
    module the planning (many indexes and constraints) cost several times the execution.

    Only for hand-written SQL whose placeholders PostgreSQL can type (values, comparisons with columns, explicit
    casts); the ORM's SQL is written for client-side binding. psycopg forgets its prepared statements after a
    ROLLBACK (it cannot know what was dropped), so they are prepared again on that connection."""
    conn = connections[DEFAULT_DB_ALIAS]
    if not settings.DB_PREPARED_STATEMENTS:
        return conn.cursor()  # client-side binding, like the ORM; the statements here work either way
    conn.ensure_connection()
    raw = conn.connection
    if raw.prepare_threshold is None:
        # Django turns automatic preparation off (its ORM SQL is bound client-side, and client-side cursors never
        # prepare anyway): only the server-binding cursors made here are affected.
        raw.prepare_threshold = PREPARE_THRESHOLD
    cursor = tracing.traced_cursor_class(ServerBindingCursor)(raw)  # a span per statement when tracing is on
    tzloader = raw.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    if conn.timezone != tzloader.timezone:  # as DatabaseWrapper.create_cursor does
        register_tzloader(conn.timezone, cursor)
    return conn._prepare_cursor(cursor)


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


@contextmanager
def nowait_or_conflict() -> Iterator[None]:
    """Run NOWAIT row locks (`select_for_update(nowait=True)`) in a savepoint: a row another transaction holds
    gives 409 `payment_in_progress` at once instead of a wait, and the caller's transaction stays usable."""
    from paytrust.errors import Conflict

    try:
        with transaction.atomic():
            yield
    except OperationalError as exc:
        if isinstance(exc.__cause__, pg_errors.LockNotAvailable):
            raise Conflict(
                "Another payment operation on this invoice is in progress. Retry shortly.",
                code="payment_in_progress",
            ) from None
        raise
