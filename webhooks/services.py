"""Outbound events. INTERIM: the outbound-webhooks work replaces this module with the real implementation."""

from __future__ import annotations


def event_record(*, merchant, mode: str, type: str, data: dict):  # noqa: A002
    """Record an outbound event inside the caller's transaction (to be implemented by the outbound work)."""
    return None
