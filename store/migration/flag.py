"""The flag row (``MIGRATION`` / ``V2_COMPLETE``): written once, last, and never changed.

Its presence is what every process checks before a signed-in page; its counts and duration
are the record owners see at ``/migration``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import (
    ClientError,
)

from store import keys
from store.batch import retry
from store.db import (
    Database,
    RawItem,
    cancellation_reasons,
    n,
    new_id,
    now_iso,
    number,
    s,
    text,
)

from .claim import Progress, completion
from .errors import TRANSIENT, LostClaim, classify, failed_at

# The actions of the flag's transaction, by position: cancellation reasons come in this order.
FLAG_PUT = 0
CLAIM_COMPLETION = 1
# Errors after which the write may or may not have landed: the same request (with the same
# client request token) is safe to repeat.


@dataclass(frozen=True)
class Flag:
    migrated_by: str
    migrated_at: str
    workspace_id: str | None
    items: int
    settings: int
    members: int
    duration_ms: int
    run_id: str
    # Rows v2 could not store as they are (see store.migration.kept): all, and per count name.
    kept_back: int = 0
    kept_by_kind: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: RawItem) -> Flag:
        return cls(
            migrated_by=text(row, "migratedBy"),
            migrated_at=text(row, "migratedAt"),
            workspace_id=text(row, "workspaceId") or None,
            items=number(row, "items"),
            settings=number(row, "settings"),
            members=number(row, "members"),
            duration_ms=number(row, "durationMs"),
            run_id=text(row, "runId"),
            kept_back=number(row, "keptBack"),
            kept_by_kind={
                name: number(counts, name)
                for counts in [row.get("keptBackByKind", {}).get("M", {})]
                for name in counts
            },
        )

    def to_row(self) -> RawItem:
        row: RawItem = {
            **keys.migration_flag(),
            "migratedBy": s(self.migrated_by),
            "migratedAt": s(self.migrated_at),
            "items": n(self.items),
            "settings": n(self.settings),
            "members": n(self.members),
            "durationMs": n(self.duration_ms),
            "runId": s(self.run_id),
            "keptBack": n(self.kept_back),
            "keptBackByKind": {"M": {k: n(v) for k, v in self.kept_by_kind.items()}},
        }
        if self.workspace_id:
            row["workspaceId"] = s(self.workspace_id)
        return row


def read_flag(db: Database) -> Flag | None:
    row = db.get(keys.migration_flag(), consistent=True)
    return Flag.from_row(row) if row else None


def write_flag(
    db: Database,
    flag: Flag,
    *,
    fence: tuple[str, str] | None = None,
    progress: Progress | None = None,
    attempts: int = 4,
    rows: list[RawItem] | None = None,
    token: str | None = None,
) -> bool:
    """Write the flag once; True if this call (or its lost earlier try) wrote it.

    With ``fence`` (the claim's owner and version) the claim is marked complete in the same
    transaction, which holds only while that run still holds the claim. ``rows`` are put in
    the same transaction (after the flag and the claim, positions 2 on): the rows that make
    the workspace visible, so they exist exactly when the flag does. ``token``: the client
    request token (default: the run id) for a second, different flag transaction."""
    actions: list[dict[str, Any]] = [
        {
            "Put": {
                "TableName": db.table,
                "Item": flag.to_row(),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
    ]
    if fence:
        owner, version = fence
        counts = {
            ":items": n(flag.items),
            ":settings": n(flag.settings),
            ":members": n(flag.members),
        }
        if progress:
            # What the copy verified, which the flag's counts were taken from.
            snapshot = progress.snapshot()
            counts = {name: snapshot[name] for name in counts}
        actions.append(completion(db, owner, version, counts))
    actions += [{"Put": {"TableName": db.table, "Item": row}} for row in rows or []]

    def send() -> bool:
        try:
            # The token makes a retry after a lost answer succeed as the same write (R8).
            db.client.transact_write_items(
                TransactItems=actions, ClientRequestToken=token or flag.run_id
            )
        except ClientError as exc:
            reasons = cancellation_reasons(exc)
            if failed_at(reasons, FLAG_PUT):
                existing = read_flag(db)
                # Our own earlier try may have landed with its answer lost.
                return existing is not None and existing.run_id == flag.run_id
            if failed_at(reasons, CLAIM_COMPLETION):
                raise LostClaim("the claim changed hands before the flag") from exc
            raise
        return True

    return retry(
        send, transient=_worth_repeating, deadline=time.monotonic() + 10, attempts=attempts
    )


def _worth_repeating(exc: Exception) -> bool:
    """A flag write whose outcome is unknown (no answer) or that was refused for a passing
    reason is sent again, with the same client request token, so it lands once."""
    return classify(exc) == TRANSIENT


def finish_without_data(db: Database, user_id: str) -> Flag:
    """A fresh install: record that there was nothing to migrate, with zero counts; the flag
    (a concurrent first request may have written its own twin, equally empty)."""
    flag = Flag(
        migrated_by=user_id,
        migrated_at=now_iso(),
        workspace_id=None,
        items=0,
        settings=0,
        members=0,
        duration_ms=0,
        run_id=new_id(),
    )
    write_flag(db, flag)
    return flag
