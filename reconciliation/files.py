"""Settlement files uploaded in the back office (docs/adr/0054): a CSV read with the account's column mapping.

Read as a stream (never the whole file in memory), at most MAX_UPLOAD_BYTES and MAX_ROWS; every row is checked
and ALL problems are reported together (first MAX_ERRORS), with the line number. Parsing writes nothing: the run
is made only from a file that parsed completely, so a bad file imports nothing.

Presets (sources in docs/adr/0054 and tests/fixtures/reconciliation/SOURCES.md):
- `xendit_transactions_v2`: Xendit's Transactions report (report version 2) as its documentation lists the
  columns: Type, Status, Reference (our external_id = pay_ id), Product ID (the line's id), Currency, Amount,
  Total Fee + Total VAT (the fee), and a date column (`Created Date` assumed: not shown in the documentation
  excerpt; override it in the mapping if the export names it otherwise).
- `midtrans`: no documented column list of the Midtrans portal export could be found; this preset names the
  columns after Midtrans' API fields (order_id, transaction_id, gross_amount, currency, transaction_status,
  settlement_time, in WIB), which its exports use. Midtrans settles each transaction to the merchant's bank.
- `generic`: our own format (type, reference, payment_id, gateway_reference, refund_id, amount, fee, currency,
  occurred_at), which `manage.py sandbox_settlement --csv` writes.
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

from django.conf import settings

from gateways.base import SettlementKind, SettlementLine
from gateways.models import GatewayAccount
from paytrust import money
from paytrust.errors import ValidationError

MAX_ERRORS = 20
CHUNK = 64 * 1024
MAX_LINE = 64 * 1024  # characters in one line of the file
FIELDS = (
    "type",
    "status",
    "reference",
    "payment_id",
    "gateway_reference",
    "refund_id",
    "amount",
    "fee",
    "fee_tax",
    "currency",
    "occurred_at",
)
REQUIRED = ("reference", "amount", "currency", "occurred_at")
WIB = timezone(timedelta(hours=7))


def max_upload_bytes() -> int:
    return settings.RECONCILIATION_MAX_UPLOAD_BYTES


def max_rows() -> int:
    return settings.RECONCILIATION_MAX_ROWS


@dataclass(frozen=True)
class Preset:
    name: str
    columns: dict[str, str]
    kinds: dict[str, SettlementKind]  # the type column's value (upper-cased) -> kind
    default_kind: SettlementKind | None = None  # when the mapping has no type column
    accepted_statuses: frozenset[str] = frozenset()  # empty: no status column / every row
    naive_tz: timezone = UTC  # the zone of times written without an offset
    settles_to_bank: bool = False
    source: str = ""
    # Columns a file may lack (then empty). A gateway preset's columns are all required: its export has them, and
    # a missing fee column must not read as "no fee".
    optional: frozenset[str] = frozenset()


PRESETS: dict[str, Preset] = {
    "generic": Preset(
        name="generic",
        columns={f: f for f in FIELDS if f not in ("status", "fee_tax")},
        kinds={k.value.upper(): k for k in SettlementKind},
        source="PayTrust's own format (docs/adr/0054)",
        optional=frozenset({"payment_id", "gateway_reference", "refund_id", "fee"}),
    ),
    "xendit_transactions_v2": Preset(
        name="xendit_transactions_v2",
        columns={
            "type": "Type",
            "status": "Status",
            "reference": "Product ID",
            "payment_id": "Reference",
            "currency": "Currency",
            "amount": "Amount",
            "fee": "Total Fee",
            "fee_tax": "Total VAT",
            "occurred_at": "Created Date",
        },
        kinds={
            "PAYMENT": SettlementKind.PAYMENT,
            "REFUND": SettlementKind.REFUND,
            "CHARGEBACK": SettlementKind.CHARGEBACK,
            "WITHDRAWAL": SettlementKind.PAYOUT,
            "PLATFORM_FEE": SettlementKind.FEE,
        },
        accepted_statuses=frozenset({"SUCCESS", "SUCCESSFUL", "SETTLED"}),
        source="https://docs.xendit.co/docs/transactions-report (Available Columns, Report version 2)",
    ),
    "midtrans": Preset(
        name="midtrans",
        columns={
            "type": "transaction_status",
            "reference": "transaction_id",
            "payment_id": "order_id",
            "currency": "currency",
            "amount": "gross_amount",
            "occurred_at": "settlement_time",
        },
        kinds={
            "SETTLEMENT": SettlementKind.PAYMENT,
            "CAPTURE": SettlementKind.PAYMENT,
            "REFUND": SettlementKind.REFUND,
            "PARTIAL_REFUND": SettlementKind.REFUND,
            "CHARGEBACK": SettlementKind.CHARGEBACK,
            "PARTIAL_CHARGEBACK": SettlementKind.CHARGEBACK,
        },
        naive_tz=WIB,
        settles_to_bank=True,
        source="Midtrans API fields (docs.midtrans.com transaction status); no portal export column list found",
    ),
}


@dataclass
class ParsedFile:
    lines: list[SettlementLine] = field(default_factory=list)
    other_days: int = 0  # rows of other days, skipped
    skipped_status: int = 0  # rows whose status is not a settled one (failed, pending …), skipped
    settles_to_bank: bool = False


def preset_for(name: str) -> Preset:
    if name not in PRESETS:
        raise ValidationError(
            f"Unknown mapping preset {name!r}; one of {', '.join(PRESETS)}.", param="preset"
        )
    return PRESETS[name]


def mapping_columns(preset: Preset, overrides: dict | None) -> dict[str, str]:
    columns = dict(preset.columns)
    for name, header in (overrides or {}).items():
        if name not in FIELDS:
            raise ValidationError(
                f"Unknown mapping field {name!r}; fields: {', '.join(FIELDS)}.", param="columns"
            )
        if header:
            columns[name] = str(header)
        else:
            columns.pop(name, None)
    return columns


class _Limited:
    """A binary stream that refuses to be read past `limit` bytes (checked as it is read, not from a header)."""

    def __init__(self, stream, limit: int) -> None:
        self.stream, self.limit, self.read_bytes = stream, limit, 0

    def chunks(self):
        while True:
            chunk = self.stream.read(CHUNK)
            if not chunk:
                return
            self.read_bytes += len(chunk)
            if self.read_bytes > self.limit:
                raise ValidationError(
                    f"The file is larger than {self.limit / (1024 * 1024):g} MB; split it by day.",
                    code="settlement_file_too_large",
                    param="file",
                )
            yield chunk


def _text_lines(stream, limit: int):
    """Decoded lines of the stream (UTF-8, a BOM allowed), read chunk by chunk; a line longer than MAX_LINE is
    refused (garbage without line breaks is never accumulated)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    try:
        for chunk in _Limited(stream, limit).chunks():
            parts = decoder.decode(chunk).split("\n")
            parts[0] = pending + parts[0]
            pending = parts.pop()
            if len(pending) > MAX_LINE:
                raise ValidationError(
                    f"The file has a line longer than {MAX_LINE // 1024} KB: it is not a settlement CSV.",
                    code="settlement_file_invalid",
                    param="file",
                )
            for line in parts:
                yield line + "\n"
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ValidationError(
            "The file is not UTF-8 text (is it a CSV export?).", code="settlement_file_invalid", param="file"
        ) from None
    if pending:
        yield pending


def parse_settlement_file(
    *, stream, account: GatewayAccount, day: date, preset_name: str, overrides: dict | None = None
) -> ParsedFile:
    """The SettlementLines of `day` in the CSV `stream` (binary), or ValidationError listing what is wrong."""
    preset = preset_for(preset_name)
    columns = mapping_columns(preset, overrides)
    missing_fields = [f for f in REQUIRED if f not in columns]
    if missing_fields:
        raise ValidationError(
            f"The mapping names no column for {', '.join(missing_fields)}.", param="columns"
        )
    reader = csv.reader(_text_lines(stream, max_upload_bytes()))
    parsed = ParsedFile(settles_to_bank=preset.settles_to_bank)
    errors: list[str] = []
    try:
        header = next(reader, None)
        index = _header_index(header, columns, optional=preset.optional)
        seen: set[tuple[str, str]] = set()
        for number, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if number - 1 > max_rows():
                raise ValidationError(
                    f"The file has more than {max_rows()} rows.", code="settlement_file_too_large"
                )
            try:
                line = _row_line(row, index, preset, account, day, parsed)
            except ValidationError as exc:
                errors.append(f"line {number}: {exc.message}")
                if len(errors) >= MAX_ERRORS:
                    break
                continue
            if line is None:
                continue
            ident = (str(line.kind), line.reference)
            if ident in seen:
                errors.append(f"line {number}: {line.kind} {line.reference!r} is listed twice")
            seen.add(ident)
            parsed.lines.append(line)
    except csv.Error as exc:
        errors.append(f"not a readable CSV file ({exc})")
    if errors:
        more = " (first problems only)" if len(errors) >= MAX_ERRORS else ""
        raise ValidationError(
            "The settlement file was not imported" + more + ": " + "; ".join(errors),
            code="settlement_file_invalid",
            param="file",
        )
    return parsed


def _header_index(
    header: list[str] | None, columns: dict[str, str], *, optional=frozenset()
) -> dict[str, int]:
    if not header:
        raise ValidationError("The file is empty.", code="settlement_file_invalid", param="file")
    names = [cell.strip() for cell in header]
    columns = {name: column for name, column in columns.items() if column in names or name not in optional}
    missing = [column for column in columns.values() if column not in names]
    if missing:
        shown = ", ".join(names[:15])[:300]
        hint = " Columns must be separated by commas." if len(names) == 1 and ";" in names[0] else ""
        raise ValidationError(
            f"The file lacks the column(s) {', '.join(missing)} of its mapping (its header: {shown}).{hint}",
            code="settlement_file_columns",
            param="file",
        )
    return {name: names.index(column) for name, column in columns.items()}


def _cell(row: list[str], index: dict[str, int], name: str) -> str:
    position = index.get(name)
    if position is None or position >= len(row):
        return ""
    return row[position].strip()


def _row_line(row, index, preset: Preset, account, day: date, parsed: ParsedFile) -> SettlementLine | None:
    if preset.accepted_statuses and "status" in index:
        if _cell(row, index, "status").upper() not in preset.accepted_statuses:
            parsed.skipped_status += 1
            return None
    kind = _kind(row, index, preset)
    currency = _cell(row, index, "currency").upper()
    if currency not in account.currencies:
        raise ValidationError(
            f"currency {currency or '(empty)'!r} is not one this account takes ({', '.join(account.currencies)})"
        )
    at = _time(_cell(row, index, "occurred_at"), preset)
    if at.date() != day:
        parsed.other_days += 1
        return None
    reference = _cell(row, index, "reference")
    if not reference:
        raise ValidationError("the reference is empty")
    amount = _amount(_cell(row, index, "amount"), currency, "amount")
    if kind != SettlementKind.ADJUSTMENT:
        amount = abs(amount)  # exports write money out as negative; the kind says the direction
        if amount == 0:
            raise ValidationError("the amount is zero")
    fee = sum(abs(_amount(_cell(row, index, f), currency, f, empty_ok=True)) for f in ("fee", "fee_tax"))
    return SettlementLine(
        kind=kind,
        reference=reference[:200],
        amount_minor=amount,
        currency=currency,
        occurred_at=at,
        payment_id=_cell(row, index, "payment_id")[:64],
        gateway_reference=_cell(row, index, "gateway_reference")[:200],
        refund_id=_cell(row, index, "refund_id")[:64],
        fee_minor=fee,
        raw={},
    )


def _kind(row, index, preset: Preset) -> SettlementKind:
    if "type" not in index:
        if preset.default_kind is None:
            raise ValidationError("the mapping has no type column")
        return preset.default_kind
    value = _cell(row, index, "type").upper()
    if value not in preset.kinds:
        raise ValidationError(f"type {value or '(empty)'!r} is not one of {', '.join(sorted(preset.kinds))}")
    return preset.kinds[value]


def _amount(value: str, currency: str, name: str, *, empty_ok: bool = False) -> int:
    if not value:
        if empty_ok:
            return 0
        raise ValidationError(f"the {name} is empty")
    cleaned = value.replace(",", "").replace(" ", "")
    negative = cleaned.startswith("-")
    try:
        minor = money.to_minor(cleaned.lstrip("-"), currency, param=name, allow_zero=True)
    except ValidationError:
        raise ValidationError(f"{name} {value[:40]!r} is not an amount in {currency}") from None
    return -minor if negative else minor


def _time(value: str, preset: Preset) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"time {value[:40]!r} is not an ISO date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=preset.naive_tz)
    return parsed.astimezone(UTC)
