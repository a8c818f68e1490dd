"""Pre-built SQL for the hottest paths (invoice creation, outbound events): INSERTs, and rows read back as models.

The ORM compiles every `save()`/`bulk_create()` anew, which on a request that writes a handful of small rows
costs more Python time than the database spends on them, and one round trip per statement. `insert_for(Model)`
builds, once per model from its metadata, an INSERT's column list and `from_json`: a SELECT of those columns from
`jsonb_populate_recordset(NULL::table, %s::jsonb)`, so any number of rows travel as ONE jsonb parameter and
PostgreSQL converts each value with the column type's own input function (a too-long string, an out-of-range
integer or a malformed date is refused, never truncated; numeric scales round half away from zero as on any
INSERT). `json_rows(insert, objs)` builds that parameter: each field's value is read once per row with a
converter chosen once per field (`pre_save` where the field has one - auto_now/auto_now_add -, timestamps as ISO
8601 with their offset and microseconds, decimals as their exact text, JSON columns embedded as JSON); a field
type without a converter here goes through the ORM's `get_db_prep_save`, so a field added to a model is written
without touching this code. Callers combine the pieces into one statement (several INSERTs as data-modifying
CTEs, see `invoices.services` and `webhooks.outbound.services.event_record`). Only identifiers from model metadata
are interpolated into SQL; every value is a bound parameter.

Not supported (refused when the statement is built, so a test fails rather than a row being written wrongly):
fields with `db_default`, fields with a custom SQL placeholder, and JSON fields with an encoder other than
Django's own (a JSON field with DjangoJSONEncoder is encoded by it, one without by the json module, as the ORM).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from uuid import UUID

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections, transaction
from django.db.backends.postgresql.base import TIMESTAMPTZ_OID, ServerBindingCursor
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.db.models import NOT_PROVIDED, Field, Model, fields
from django.db.models import JSONField as ModelJSONField
from psycopg import errors as pg_errors
from psycopg.pq import Format
from psycopg.types.numeric import Int8

from paytrust import jsonenc, tracing

PREPARE_THRESHOLD = 5  # executions of a statement on a connection before it is prepared (psycopg's default)


@dataclass(frozen=True)
class Insert:
    table: str  # quoted table name
    fields: tuple  # the concrete fields written, in column order (database-generated keys are left out)
    columns: str  # "(col, col, …)", quoted
    returning: tuple  # database-generated fields (an AutoField primary key), to read back with RETURNING
    # "SELECT col, col, … FROM jsonb_populate_recordset(NULL::table, %s::jsonb)": any number of rows from one
    # jsonb parameter (`json_rows`), so the statement text and its parameters do not depend on the number of rows.
    from_json: str
    getters: tuple  # per field: (column name, function obj -> JSON value)
    # per JSON field with an encoder: (column name as JSON, function obj -> the value's JSON text), embedded as is
    fragments: tuple = ()


@dataclass(frozen=True)
class Cte:
    """A data-modifying CTE (`name AS (INSERT/UPDATE ...)`) that one layer hands to another's statement, so that
    two writes are one statement (one round trip, one atomic write): `params` are its parameters in order. `sql`
    must be constant text (values only as parameters): statements are built and prepared once per text. `check`,
    if any, is constant SQL (no parameters) that the statement's final SELECT must evaluate, such as a
    `paytrust_assert` over the CTE's rows (apikeys migration 0008): a false one fails the whole statement."""

    sql: str
    params: list
    check: str = ""


@contextmanager
def statement_transaction() -> Iterator[None]:
    """For a write that is ONE statement: PostgreSQL runs a statement outside a transaction block as a
    transaction of its own, so in autocommit nothing is added (no BEGIN/COMMIT round trips); inside a caller's
    transaction.atomic() it runs in a savepoint, so a refused statement (a unique key) leaves that transaction
    usable, as `transaction.atomic()` would."""
    if transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            yield
    else:
        yield


@cache
def insert_for(model: type[Model]) -> Insert:
    meta = model._meta
    quote = connection.ops.quote_name
    generated = tuple(meta.db_returning_fields) if meta.auto_field else ()
    written = tuple(f for f in meta.concrete_fields if f not in generated)
    for field in written:
        if field.db_default is not NOT_PROVIDED or hasattr(field, "get_placeholder"):
            raise TypeError(f"{meta.label}.{field.name}: not supported by paytrust.sql (use the ORM)")
        if isinstance(field, ModelJSONField) and field.encoder not in (None, DjangoJSONEncoder):
            raise TypeError(
                f"{meta.label}.{field.name}: JSON encoder not supported by paytrust.sql (use the ORM)"
            )
    columns = ", ".join(quote(f.column) for f in written)
    return Insert(
        table=quote(meta.db_table),
        fields=written,
        columns=f"({columns})",
        returning=generated,
        from_json=f"SELECT {columns} FROM jsonb_populate_recordset(NULL::{quote(meta.db_table)}, %s::jsonb)",  # noqa: S608
        getters=tuple((f.column, _json_getter(f)) for f in written if not _encoded_json(f)),
        fragments=tuple((json.dumps(f.column), _json_fragment(f)) for f in written if _encoded_json(f)),
    )


def json_rows(insert: Insert, objs: Iterable[Model]) -> str:
    """The jsonb parameter of `insert.from_json` for the rows of `objs` (fills their auto_now/auto_now_add
    fields, as `save()` would). A JSON column with an encoder is encoded once, by that encoder, and its text put
    into the row as it is (an outbound event's `data`, the invoice's whole representation, was encoded, decoded
    and encoded again)."""
    if not insert.fragments:
        return _json_text([{column: get(obj) for column, get in insert.getters} for obj in objs])
    rows = []
    for obj in objs:
        plain = _json_text({column: get(obj) for column, get in insert.getters})
        encoded = ",".join(f"{column}:{fragment(obj)}" for column, fragment in insert.fragments)
        rows.append(f"{plain[:-1]},{encoded}}}" if plain != "{}" else f"{{{encoded}}}")
    return f"[{','.join(rows)}]"


def _json_text(value) -> str:
    """Rows as JSON text: orjson (paytrust.jsonenc), the standard library where orjson cannot encode alike."""
    return jsonenc.dumps(value, fallback=_stdlib_json).decode()


def _stdlib_json(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _encoded_json(field: Field) -> bool:
    return isinstance(field, ModelJSONField) and field.encoder is not None


def _json_fragment(field: Field) -> Callable[[Model], str]:
    """The JSON text of a JSON field with an encoder, as the ORM would send it (`json.dumps(value, cls=encoder)`;
    None is SQL NULL, as `get_db_prep_save` makes it)."""
    attname, encoder = field.attname, field.encoder

    default = encoder().default  # what the encoder makes of the types JSON has not (datetime, Decimal, ...)

    def stdlib(value) -> bytes:
        return json.dumps(value, cls=encoder).encode()

    def fragment(obj) -> str:
        value = obj.__dict__[attname]
        return "null" if value is None else jsonenc.dumps(value, default=default, fallback=stdlib).decode()

    return fragment


def _json_getter(field: Field) -> Callable[[Model], object]:
    """How one field's value becomes JSON that PostgreSQL's input function for its column reads back exactly."""
    attname = field.attname
    if type(field).pre_save is not Field.pre_save:  # auto_now/auto_now_add (dates), files: the ORM's own rule

        def raw(obj, field=field):
            return field.pre_save(obj, True)

    else:

        def raw(obj, attname=attname):
            return obj.__dict__[attname]

    target = field.target_field if field.is_relation else field
    if isinstance(target, ModelJSONField):
        # Embedded as JSON: jsonb_populate_recordset keeps a json/jsonb column's value as it is. With an encoder,
        # what that encoder makes of the value, as the ORM would store it.
        if target.encoder is None:
            return raw
        raise TypeError(f"{field}: a JSON field with an encoder is a fragment (_json_fragment), not a getter")
    if isinstance(target, fields.DateTimeField):
        convert: Callable = _timestamp
    elif isinstance(target, fields.DateField):
        convert = date.isoformat
    elif isinstance(target, fields.DecimalField):
        convert = _decimal
    elif isinstance(target, fields.UUIDField):
        convert = str
    elif isinstance(target, fields.CharField | fields.TextField | fields.IntegerField | fields.BooleanField):
        return raw  # JSON's own string, number and boolean (a str/int enum member encodes as its value)
    else:

        def convert(value, field=field):
            return _json_value(field.get_db_prep_save(value, connections[DEFAULT_DB_ALIAS]))

    def get(obj):
        value = raw(obj)
        return None if value is None else convert(value)

    return get


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime for a timestamp with time zone column")
    return value.isoformat()


def _decimal(value: Decimal) -> str:
    if isinstance(value, float):
        raise TypeError("a float for a decimal column")  # an int is exact; a float never touches an amount
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {value}")
    return str(value)


def _json_value(value):
    """A value the ORM adapted for psycopg, as JSON (the fallback for field types without a converter)."""
    if isinstance(value, datetime):
        return _timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if hasattr(value, "obj"):  # psycopg's Json/Jsonb wrappers
        return value.obj
    return value


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


def new_instance(model: type[Model], **values) -> Model:
    """`model(**values)` for a row about to be inserted, built through the model's positional constructor (the
    path `from_db` takes, several times cheaper than keyword arguments on a wide model): every concrete field
    gets its value from `values` (by name, or by attname for a foreign key's id) or its default, and a related
    object given by name is cached on the instance as the keyword constructor would. Unknown names raise
    TypeError, as the constructor does."""
    fields, names = _constructor_fields(model)
    unknown = values.keys() - names
    if unknown:
        raise TypeError(f"{model.__name__}() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    args = []
    related = []
    for field, name, attname in fields:
        if name in values and field.is_relation:
            obj = values[name]
            related.append((field, obj))
            args.append(None if obj is None else getattr(obj, field.target_field.attname))
        elif attname in values:
            args.append(values[attname])
        elif name in values:
            args.append(values[name])
        else:
            args.append(field.get_default())
    instance = model(*args)
    for field, obj in related:
        field.set_cached_value(instance, obj)
    return instance


@cache
def _constructor_fields(model: type[Model]) -> tuple[tuple, frozenset]:
    fields = tuple((f, f.name, f.attname) for f in model._meta.concrete_fields)
    return fields, frozenset(n for f, name, attname in fields for n in (name, attname))


def mark_saved(obj: Model) -> None:
    """Flag an instance inserted through this module as loaded from the database (as `save()` does)."""
    obj._state.adding = False
    obj._state.db = connection.alias


def instance_from_row(model: type[Model], fields, values) -> Model:
    """A model instance from a row of `fields` columns read by hand-written SQL (as the ORM would build it)."""
    attnames, converters = _row_converters(tuple(fields), connection.vendor)
    if len(values) != len(attnames):
        raise ValueError(f"{len(values)} values for {len(attnames)} fields")
    if converters:
        values = list(values)
        for index, field, field_converters in converters:
            value = values[index]
            for converter in field_converters:
                value = converter(value, field, connection)
            values[index] = value
    return model.from_db(connection.alias, attnames, values)


@cache
def _row_converters(fields: tuple, vendor: str) -> tuple[tuple[str, ...], tuple]:
    """The attnames of `fields` and, for those that have any, their from-database converters (the same for every
    row: looked up once per field list instead of once per value)."""
    converters = tuple(
        (index, field, tuple(field.get_db_converters(connection)))
        for index, field in enumerate(fields)
        if field.get_db_converters(connection)
    )
    return tuple(f.attname for f in fields), converters


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
