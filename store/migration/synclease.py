"""The sync lease: which server process applies late v1 writes by itself, one at a time.

One row (``MIGRATION`` / ``SYNC_LEASE``) names the holder and a random ``version`` the holder
changes at least every third of the lease (the claim's rule, ``store.migration.claim``).
Another process takes it over only after seeing the same version for a whole lease on its own
monotonic clock, with a write conditional on that version; no two hosts' clocks are compared.
A holder whose renewal is refused has lost it, unless the row still names it (an earlier
renewal whose answer was lost landed): then it carries on at the version it finds.

The lease is about cost, not safety: applying a late v1 write is idempotent and conditional
(``sync``), so a paused holder that wakes up late can only repeat work, never undo a person's
change; it stops at its next renewal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from store import keys
from store.db import Database, condition_failed, new_id, now_iso, s, text


@dataclass
class SyncLease:
    """This process's view of the lease: whether it holds it, and what it saw of others."""

    me: str
    lease_seconds: float
    version: str | None = None  # set while this process holds the lease
    renewed_at: float = float("-inf")
    seen_version: str = ""
    seen_since: float = 0.0
    monotonic: Callable[[], float] = time.monotonic

    @property
    def held(self) -> bool:
        return self.version is not None

    def keep(self, db: Database) -> bool:
        """Hold the lease (taking a free or lapsed one, renewing our own when due); whether
        this process holds it now. At most one DynamoDB write per third of a lease."""
        now = self.monotonic()
        if self.held:
            if now - self.renewed_at < self.lease_seconds / 3:
                return True
            return self._renew(db, now)
        return self._try_take(db, now)

    def _renew(self, db: Database, now: float) -> bool:
        new_version = new_id()
        try:
            _write(db, self.me, new_version, "#owner = :me AND version = :seen", self.version)
        except ClientError as exc:
            if not condition_failed(exc):
                raise
            row = db.get(keys.migration_sync_lease(), consistent=True)
            if row is not None and text(row, "owner") == self.me:
                self.version, self.renewed_at = text(row, "version"), now  # our lost answer
                return True
            self.version = None
            return False
        self.version, self.renewed_at = new_version, now
        return True

    def _try_take(self, db: Database, now: float) -> bool:
        row = db.get(keys.migration_sync_lease(), consistent=True)
        if row is None:
            condition, seen = "attribute_not_exists(PK)", None
        else:
            seen = text(row, "version")
            if seen != self.seen_version:
                self.seen_version, self.seen_since = seen, now
                return False
            if now - self.seen_since < self.lease_seconds:
                return False
            condition = "version = :seen"
        new_version = new_id()
        try:
            _write(db, self.me, new_version, condition, seen)
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        self.version, self.renewed_at = new_version, now
        return True

    def release(self, db: Database) -> None:
        """Let go at exit, so another process need not wait a lease (best effort)."""
        if not self.held:
            return
        try:
            db.client.delete_item(
                TableName=db.table,
                Key=keys.migration_sync_lease(),
                ConditionExpression="#owner = :me",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":me": s(self.me)},
            )
        except ClientError:
            pass  # taken meanwhile, or DynamoDB away: the lease lapses by itself
        self.version = None


def _write(db: Database, me: str, version: str, condition: str, seen: str | None) -> None:
    values = {":me": s(me), ":new": s(version), ":now": s(now_iso())}
    if seen is not None and ":seen" in condition:
        values[":seen"] = s(seen)
    db.client.update_item(
        TableName=db.table,
        Key=keys.migration_sync_lease(),
        UpdateExpression="SET #owner = :me, version = :new, heartbeatAt = :now",
        ConditionExpression=condition,
        ExpressionAttributeNames={"#owner": "owner"},
        ExpressionAttributeValues=values,
    )
