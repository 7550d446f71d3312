"""The claim row: who holds the migration, its lease and heartbeat, and the writers' fences.

The claim is one row (``MIGRATION`` / ``CLAIM``); each copy writer also has a fence row
(``MIGRATION`` / ``FENCE#<n>``) naming the run that may write through it. Taking the claim
moves every fence in the same transaction, which is what makes an old holder's late fenced
writes fail inside DynamoDB (see ``fenced.FencedWrites._write_fenced``); its late bulk copies
go to its own attempt's partition, which a takeover of a lapsed claim abandons
(``new_attempt``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from store import keys
from store.db import (
    Database,
    RawItem,
    n,
    new_id,
    number,
    parse_iso,
    s,
    text,
)

log = logging.getLogger(__name__)

STATE_RUNNING = "running"
STATE_WAITING = "waiting"
# A permanent error stopped the migration: nobody takes the claim until `migration retry`.
STATE_FAILED = "failed"
STATE_COMPLETE = "complete"


# What people read while the copy is retried after a transient failure (never internals).
RETRYING_MESSAGE = "The database is busy right now; retrying shortly."
STOPPED_MESSAGE = "The copy stopped and needs the site's operator."


@dataclass
class Claim:
    workspace_id: str
    owner: str
    version: str
    state: str
    started_at: str
    started_by: str
    phase: str
    items_copied: int
    settings_copied: int
    members_copied: int
    items_total: int | None
    last_error: str
    cursors: dict[str, Any]
    total_segments: int
    attempt: int
    # Consecutive failed runs (reset once a run makes progress), when the next may start
    # (ISO UTC; empty: at once), and the operator's reason for the last failure.
    failures: int = 0
    next_attempt_at: str = ""
    failed_reason: str = ""
    # Rows kept back so far, per count name ("items", "settings", "members").
    kept_by_kind: dict[str, int] = field(default_factory=dict)
    # Partitions of earlier attempts, abandoned (see ``new_attempt``): never a visible row.
    abandoned: list[str] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: RawItem) -> Claim:
        return cls(
            workspace_id=text(row, "workspaceId"),
            owner=text(row, "owner"),
            version=text(row, "version"),
            state=text(row, "state"),
            started_at=text(row, "startedAt"),
            started_by=text(row, "startedBy"),
            phase=text(row, "phase"),
            items_copied=number(row, "itemsCopied"),
            settings_copied=number(row, "settingsCopied"),
            members_copied=number(row, "membersCopied"),
            items_total=number(row, "itemsTotal") if "itemsTotal" in row else None,
            last_error=text(row, "lastError"),
            cursors=row.get("cursors", {}).get("M", {}),
            total_segments=number(row, "totalSegments", 1),
            attempt=number(row, "attempt", 1),
            failures=number(row, "failures"),
            next_attempt_at=text(row, "nextAttemptAt"),
            failed_reason=text(row, "failedReason"),
            kept_by_kind={
                name: number(counts, name)
                for counts in [row.get("keptBackByKind", {}).get("M", {})]
                for name in counts
            },
            abandoned=sorted(row.get("abandonedWorkspaces", {}).get("SS", [])),
        )

    def due(self, wall: Callable[[], float] = time.time) -> bool:
        """Whether a released claim may be taken now (its backoff, if any, is over)."""
        if not self.next_attempt_at:
            return True
        return parse_iso(self.next_attempt_at).timestamp() <= wall()

    def to_row(self, *, lease: float, heartbeat_at: str) -> RawItem:
        """The row a first claim writes. The progress attributes (counts, cursors, last
        error) are left out: the heartbeats add them, and ``from_row`` reads absent ones as
        nothing done yet."""
        return {
            **keys.migration_claim(),
            "workspaceId": s(self.workspace_id),
            "owner": s(self.owner),
            "version": s(self.version),
            "state": s(self.state),
            "startedAt": s(self.started_at),
            "startedBy": s(self.started_by),
            "phase": s(self.phase),
            "totalSegments": n(self.total_segments),
            "attempt": n(self.attempt),
            "leaseSeconds": n(lease),
            "heartbeatAt": s(heartbeat_at),
        }


def read_claim(db: Database) -> Claim | None:
    row = db.get(keys.migration_claim(), consistent=True)
    return Claim.from_row(row) if row else None


@dataclass
class ClaimObserver:
    """What this process has seen of someone else's claim, timed on its own monotonic clock."""

    version: str = ""
    since: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def lapsed(self, claim: Claim, lease: float, now: float) -> bool:
        with self.lock:
            if claim.version != self.version:
                self.version, self.since = claim.version, now
                return False
            return now - self.since >= lease


@dataclass
class Run:
    """One attempt at the migration by this process, holding the claim."""

    run_id: str
    user_id: str
    claim: Claim


@dataclass
class Progress:
    """What the holder has finished, published on the claim with every heartbeat."""

    phase: str = "starting"
    items: int = 0
    settings: int = 0
    members: int = 0
    items_total: int | None = None
    cursors: dict[str, Any] = field(default_factory=dict)
    # Rows kept back (not copied), per count name; ``items`` etc. above count copies only.
    kept: dict[str, int] = field(default_factory=dict)
    advanced: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            values: dict[str, Any] = {
                ":phase": s(self.phase),
                ":items": n(self.items),
                ":settings": n(self.settings),
                ":members": n(self.members),
                ":cursors": {"M": dict(self.cursors)},
                ":kept": {"M": {name: n(count) for name, count in self.kept.items()}},
                ":keptTotal": n(sum(self.kept.values())),
            }
            if self.items_total is not None:
                values[":total"] = n(self.items_total)
            return values

    def page_done(
        self, segment: int, count: int, next_key: dict[str, Any] | None, kept: int = 0
    ) -> None:
        # Counts and cursor move together, so a resumed run never counts a page twice.
        with self.lock:
            self.items += count
            self.kept["items"] = self.kept.get("items", 0) + kept
            self.advanced = True
            self.cursors[str(segment)] = {"M": next_key} if next_key else s("done")


def fence_puts(db: Database, owner: str, writers: int) -> list[dict[str, Any]]:
    """Transaction actions that hand every writer's fence to ``owner``."""
    return [
        {"Put": {"TableName": db.table, "Item": {**keys.migration_fence(i), "owner": s(owner)}}}
        for i in range(writers)
    ]


def fence_check(db: Database, writer: int, owner: str) -> dict[str, Any]:
    """A transaction action that holds only while ``writer``'s fence still names ``owner``."""
    return {
        "ConditionCheck": {
            "TableName": db.table,
            "Key": keys.migration_fence(writer),
            "ConditionExpression": "#owner = :me",
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {":me": s(owner)},
        }
    }


def holder_check(db: Database, owner: str, version: str) -> dict[str, Any]:
    """A transaction action that holds only while ``owner`` holds the claim at ``version``
    (for writes made once the heartbeat has stopped, just before the flag)."""
    return {
        "ConditionCheck": {
            "TableName": db.table,
            "Key": keys.migration_claim(),
            "ConditionExpression": "#owner = :me AND version = :version AND #state = :running",
            "ExpressionAttributeNames": {"#owner": "owner", "#state": "state"},
            "ExpressionAttributeValues": {
                ":me": s(owner),
                ":version": s(version),
                ":running": s(STATE_RUNNING),
            },
        }
    }


def completion(db: Database, owner: str, version: str, counts: dict[str, Any]) -> dict[str, Any]:
    """A transaction action marking the claim complete with the final ``counts`` (``:items``,
    ``:settings``, ``:members``); it holds only while ``owner`` still holds it at ``version``."""
    return {
        "Update": {
            "TableName": db.table,
            "Key": keys.migration_claim(),
            "UpdateExpression": "SET #state = :complete, phase = :done, "
            "itemsCopied = :items, settingsCopied = :settings, membersCopied = :members, "
            "failures = :zero, lastError = :none REMOVE failedReason",
            "ConditionExpression": "#owner = :me AND version = :version",
            "ExpressionAttributeNames": {"#owner": "owner", "#state": "state"},
            "ExpressionAttributeValues": {
                ":complete": s(STATE_COMPLETE),
                ":done": s("complete"),
                ":zero": n(0),
                ":none": s(""),
                **counts,
                ":me": s(owner),
                ":version": s(version),
            },
        }
    }


def new_attempt(old_workspace_id: str) -> tuple[list[str], dict[str, Any], str]:
    """The SET clauses, values and ADD clause that start a new attempt: a fresh partition
    for the copy, nothing copied yet, and the old partition listed as abandoned.

    Used when a holder may still have a write in flight towards the old partition (a lapsed
    claim taken over, a hand-over from outside a run that did not stop) or when the copy
    starts over (v1 changed under it): that holder's late writes then land where nobody
    looks, and ``migration cleanup`` deletes them."""
    sets = [
        "workspaceId = :attemptWs",
        "cursors = :noCursors",
        "itemsCopied = :zero",
        "settingsCopied = :zero",
        "membersCopied = :zero",
        "keptBackByKind = :noCursors",
        "keptBack = :zero",
    ]
    values = {
        ":attemptWs": s(new_id()),
        ":noCursors": {"M": {}},
        ":zero": n(0),
        ":abandon": {"SS": [old_workspace_id]},
    }
    return sets, values, " ADD abandonedWorkspaces :abandon"


def move_seen(
    db: Database, seen: Claim, update: str, values: dict[str, Any], *, states: tuple[str, ...]
) -> None:
    """Update the claim only while it is still at the version ``seen`` and in one of
    ``states`` (``:new`` in ``update`` is a fresh version); raises ConditionalCheckFailed
    otherwise."""
    allowed = {f":state{i}": s(state) for i, state in enumerate(states)}
    db.client.update_item(
        TableName=db.table,
        Key=keys.migration_claim(),
        UpdateExpression=update,
        ConditionExpression=f"version = :seen AND #state IN ({', '.join(allowed)})",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={
            **values,
            **allowed,
            ":seen": s(seen.version),
            ":new": s(new_id()),
        },
    )
