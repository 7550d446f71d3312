"""Why a run stopped, and how to read a cancelled transaction's reasons by position."""

from __future__ import annotations

CONDITION_FAILED = "ConditionalCheckFailed"


class MigrationError(Exception):
    """The run stopped before the flag; the message is safe to show an operator."""


class LostClaim(MigrationError):
    """Another run took the claim over; this one must not write anything more."""


class RowRejected(MigrationError):
    """DynamoDB refused a page of copies as invalid, and no single row explains it (a row it
    refuses on its own is kept back instead, and the copy goes on)."""


class V1Changed(MigrationError):
    """The v1 rows counted before the flag differ from those copied and kept back: v1 changed
    during the copy. The claim's cursors and counts are reset, so the next run copies again
    from the start (every write is idempotent); a transient failure."""


def failed_at(reasons: list[str | None], position: int) -> bool:
    """Whether the transaction's action at ``position`` failed its condition."""
    return len(reasons) > position and reasons[position] == CONDITION_FAILED
