"""Why a run stopped, and how to read a cancelled transaction's reasons by position."""

from __future__ import annotations

CONDITION_FAILED = "ConditionalCheckFailed"


class MigrationError(Exception):
    """The run stopped before the flag; the message is safe to show an operator."""


class LostClaim(MigrationError):
    """Another run took the claim over; this one must not write anything more."""


class RowRejected(MigrationError):
    """DynamoDB refused one v1 row for good (for example: too large with its v2 keys)."""


def failed_at(reasons: list[str | None], position: int) -> bool:
    """Whether the transaction's action at ``position`` failed its condition."""
    return len(reasons) > position and reasons[position] == CONDITION_FAILED
