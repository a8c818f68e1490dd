"""Posting to the ledger: the one writer of accounts, movements and entries.

`movement_post` runs in the CALLER's transaction (the state change that causes the movement), so the movement is
written if and only if the change commits. It is idempotent per (source_type, source_id, type): posting the same
movement again (a replayed notification, a job run twice, a backfill) returns the movement already there and writes
nothing. The database checks the rest at commit (migration 0002): entries sum to zero, every entry is on an account
of the movement's merchant, mode and currency, and nothing posted is ever updated or deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.db import connection, transaction

from ledger.models import Account, Entry, Movement, MovementType


class LedgerError(RuntimeError):
    """A posting that can never balance: a bug in the caller, never bad input (so not an ApplicationError).
    Nothing is written."""


def accounts_for(*, merchant_id: str, mode: str, currency: str, codes: list[str]) -> dict[str, int]:
    """The ids of the tenant's accounts with these codes in `currency`, created when missing (concurrency-safe:
    INSERT … ON CONFLICT DO NOTHING, then read)."""
    wanted = sorted(set(codes))
    found = dict(
        Account.objects.filter(
            merchant_id=merchant_id, mode=mode, currency=currency, code__in=wanted
        ).values_list("code", "id")
    )
    missing = [code for code in wanted if code not in found]
    if missing:
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO ledger_account (merchant_id, mode, currency, code, created_at) "
                "VALUES (%s, %s, %s, %s, now()) ON CONFLICT (merchant_id, mode, currency, code) DO NOTHING",
                [(merchant_id, mode, currency, code) for code in missing],
            )
        found.update(
            Account.objects.filter(
                merchant_id=merchant_id, mode=mode, currency=currency, code__in=missing
            ).values_list("code", "id")
        )
    return found


def movement_post(
    *,
    merchant_id: str,
    mode: str,
    currency: str,
    type: str,
    source_type: str,
    source_id: str,
    occurred_at: datetime,
    lines: Mapping[str, int],
    description: str = "",
    reverses: Movement | None = None,
) -> tuple[Movement, bool]:
    """Post one movement: `lines` maps account code -> signed minor units (debit > 0, credit < 0; zero lines are
    left out). Returns (movement, created); created False = it was posted before (nothing written now).

    Raises LedgerError (nothing written) when the lines do not sum to zero or are all zero."""
    if type not in MovementType.values:
        raise LedgerError(f"Unknown movement type {type!r}.")
    entries = {code: amount for code, amount in lines.items() if amount}
    if not entries or sum(entries.values()) != 0:
        raise LedgerError(f"{type} of {source_id}: lines {dict(lines)} do not balance.")
    if any(isinstance(v, bool) or not isinstance(v, int) for v in entries.values()):
        raise LedgerError(f"{type} of {source_id}: amounts must be integer minor units.")
    with transaction.atomic():
        movement = Movement(
            merchant_id=merchant_id,
            mode=mode,
            currency=currency,
            type=type,
            source_type=source_type,
            source_id=source_id,
            occurred_at=occurred_at,
            description=description[:255],
            reverses=reverses,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO ledger_movement (id, merchant_id, mode, currency, type, source_type, source_id, "
                "occurred_at, created_at, description, reverses_id) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now(), %s, %s) "
                "ON CONFLICT (source_type, source_id, type) DO NOTHING RETURNING id",
                [
                    movement.id,
                    merchant_id,
                    mode,
                    currency,
                    type,
                    source_type,
                    source_id,
                    occurred_at,
                    movement.description,
                    reverses.pk if reverses is not None else None,
                ],
            )
            inserted = cursor.fetchone() is not None
        if not inserted:
            return Movement.objects.get(source_type=source_type, source_id=source_id, type=type), False
        accounts = accounts_for(merchant_id=merchant_id, mode=mode, currency=currency, codes=list(entries))
        Entry.objects.bulk_create(
            [
                Entry(movement_id=movement.id, account_id=accounts[code], amount_minor=amount)
                for code, amount in sorted(entries.items())
            ]
        )
    return movement, True


def movement_reverse(
    *, movement: Movement, occurred_at: datetime, description: str = ""
) -> tuple[Movement, bool]:
    """Correct a movement posted in error with its exact opposite (the original stays, append-only)."""
    lines: dict[str, int] = {}
    for entry in movement.entries.select_related("account"):
        lines[entry.account.code] = lines.get(entry.account.code, 0) - entry.amount_minor
    return movement_post(
        merchant_id=movement.merchant_id,
        mode=movement.mode,
        currency=movement.currency,
        type=MovementType.REVERSAL,
        source_type="movement",
        source_id=movement.id,
        occurred_at=occurred_at,
        lines=lines,
        description=description or f"reverses {movement.id}",
        reverses=movement,
    )
