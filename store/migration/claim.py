"""The claim row: who holds the migration, its lease and heartbeat, and the writers' fences.

The claim is one row (``MIGRATION`` / ``CLAIM``); each copy writer also has a fence row
(``MIGRATION`` / ``FENCE#<n>``) naming the run that may write through it. Taking the claim
moves every fence in the same transaction, which is what makes an old holder's late copies
fail inside DynamoDB (see ``engine.Migration._write_fenced``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any

from botocore.exceptions import ClientError

from store import keys
from store.db import Database, RawItem, error_code, n, new_id, now_iso, number, s, text

log = logging.getLogger(__name__)

STATE_RUNNING = "running"
STATE_WAITING = "waiting"
STATE_COMPLETE = "complete"


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
        )

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
            }
            if self.items_total is not None:
                values[":total"] = n(self.items_total)
            return values

    def page_done(self, segment: int, count: int, next_key: dict[str, Any] | None) -> None:
        # Count and cursor move together, so a resumed run never counts a page twice.
        with self.lock:
            self.items += count
            self.advanced = True
            self.cursors[str(segment)] = {"M": next_key} if next_key else s("done")


def try_acquire(
    db: Database,
    user_id: str,
    observer: ClaimObserver,
    *,
    lease: float,
    segments: int,
    monotonic: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    current: Claim | None | EllipsisType = ...,
) -> Run | None:
    """Take the claim if nobody holds it, if its holder gave up, or if it has lapsed.

    ``current`` is the claim as the caller has just read it (strongly consistent), so a page
    that also shows its progress reads it once; when not given it is read here. A stale
    value is harmless: every write below is conditional on what it saw."""
    run_id = new_id()
    if current is ...:
        current = read_claim(db)
    if current is None:
        fresh = _fresh_claim(run_id, user_id, segments, wall)
        return _claim_first(db, Run(run_id, user_id, fresh), lease, wall)
    if current.state == STATE_COMPLETE:
        return None
    if current.state != STATE_WAITING and not observer.lapsed(current, lease, monotonic()):
        return None
    return _take_over(db, Run(run_id, user_id, current), lease, wall)


def _fresh_claim(run_id: str, user_id: str, segments: int, wall: Callable[[], float]) -> Claim:
    return Claim(
        workspace_id=new_id(),
        owner=run_id,
        version=new_id(),
        state=STATE_RUNNING,
        started_at=now_iso(wall),
        started_by=user_id,
        phase="starting",
        items_copied=0,
        settings_copied=0,
        members_copied=0,
        items_total=None,
        last_error="",
        cursors={},
        total_segments=segments,
        attempt=1,
    )


def _claim_first(db: Database, run: Run, lease: float, wall: Callable[[], float]) -> Run | None:
    """Create the claim row, and with it the workspace id every later run will fill."""
    first = {
        "Put": {
            "TableName": db.table,
            "Item": run.claim.to_row(lease=lease, heartbeat_at=now_iso(wall)),
            # Only the first claimant ever creates the row (and so the workspace id).
            "ConditionExpression": "attribute_not_exists(PK)",
        }
    }
    fences = fence_puts(db, run.run_id, run.claim.total_segments + 1)
    return run if _transact(db, [first, *fences]) else None


def _take_over(db: Database, run: Run, lease: float, wall: Callable[[], float]) -> Run | None:
    """Move a lapsed or released claim to this run, conditional on the version last seen."""
    current, new_version = run.claim, new_id()
    takeover = {
        "Update": {
            "TableName": db.table,
            "Key": keys.migration_claim(),
            "UpdateExpression": (
                "SET #owner = :me, version = :new, #state = :running, heartbeatAt = :now, "
                "leaseSeconds = :lease ADD attempt :one"
            ),
            # Only if nobody else moved it since we looked: a lapsed or released claim.
            "ConditionExpression": "version = :seen AND #state <> :complete",
            "ExpressionAttributeNames": {"#owner": "owner", "#state": "state"},
            "ExpressionAttributeValues": {
                ":me": s(run.run_id),
                ":new": s(new_version),
                ":running": s(STATE_RUNNING),
                ":now": s(now_iso(wall)),
                ":lease": n(lease),
                ":one": n(1),
                ":seen": s(current.version),
                ":complete": s(STATE_COMPLETE),
            },
        }
    }
    # Moving every fence with the claim is what makes the old holder's late writes fail.
    if not _transact(db, [takeover, *fence_puts(db, run.run_id, current.total_segments + 1)]):
        return None
    log.info("migration claim taken over (attempt %d)", current.attempt + 1)
    current.owner, current.version, current.state = run.run_id, new_version, STATE_RUNNING
    current.attempt += 1
    return run


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


def _transact(db: Database, actions: list[dict[str, Any]]) -> bool:
    """Run a claim transaction; False when a condition failed or it raced another writer."""
    try:
        db.client.transact_write_items(TransactItems=actions)
    except ClientError as exc:
        if error_code(exc) in ("TransactionCanceledException", "TransactionConflictException"):
            return False
        raise
    return True


def _progress_update(progress: Progress) -> tuple[list[str], dict[str, Any]]:
    """The SET clauses and values that move the claim to a new version (``:new``, at
    ``:now``) and publish ``progress``; the caller adds those two values and its condition."""
    values = progress.snapshot()
    sets = [
        "version = :new",
        "heartbeatAt = :now",
        "phase = :phase",
        "itemsCopied = :items",
        "settingsCopied = :settings",
        "membersCopied = :members",
        "cursors = :cursors",
    ]
    if ":total" in values:
        sets.append("itemsTotal = :total")
    if progress.advanced:
        # The earlier run's trouble is over once this one makes progress.
        sets.append("lastError = :none")
        values[":none"] = s("")
    return sets, values


def publish(
    db: Database, run_id: str, seen: str, new_version: str, progress: Progress, now: str
) -> None:
    """A heartbeat: move the claim from version ``seen`` to ``new_version`` and publish the
    progress. Raises ConditionalCheckFailedException once the claim is not this run's."""
    sets, values = _progress_update(progress)
    db.client.update_item(
        TableName=db.table,
        Key=keys.migration_claim(),
        UpdateExpression="SET " + ", ".join(sets),
        ConditionExpression="#owner = :me AND version = :current",
        ExpressionAttributeNames={"#owner": "owner"},
        ExpressionAttributeValues={
            **values,
            ":new": s(new_version),
            ":now": s(now),
            ":me": s(run_id),
            ":current": s(seen),
        },
    )


def completion(db: Database, owner: str, version: str, counts: dict[str, Any]) -> dict[str, Any]:
    """A transaction action marking the claim complete with the final ``counts`` (``:items``,
    ``:settings``, ``:members``); it holds only while ``owner`` still holds it at ``version``."""
    return {
        "Update": {
            "TableName": db.table,
            "Key": keys.migration_claim(),
            "UpdateExpression": "SET #state = :complete, phase = :done, "
            "itemsCopied = :items, settingsCopied = :settings, membersCopied = :members",
            "ConditionExpression": "#owner = :me AND version = :version",
            "ExpressionAttributeNames": {"#owner": "owner", "#state": "state"},
            "ExpressionAttributeValues": {
                ":complete": s(STATE_COMPLETE),
                ":done": s("complete"),
                **counts,
                ":me": s(owner),
                ":version": s(version),
            },
        }
    }


def release(db: Database, run: Run, reason: str) -> None:
    """Hand the claim back after a failed run so the next request may resume at once."""
    try:
        db.client.update_item(
            TableName=db.table,
            Key=keys.migration_claim(),
            UpdateExpression="SET #state = :waiting, lastError = :reason, version = :new",
            ConditionExpression="#owner = :me AND #state = :running",
            ExpressionAttributeNames={"#owner": "owner", "#state": "state"},
            ExpressionAttributeValues={
                ":waiting": s(STATE_WAITING),
                ":reason": s(reason[:500]),
                ":new": s(new_id()),
                ":me": s(run.run_id),
                ":running": s(STATE_RUNNING),
            },
        )
    except ClientError as exc:
        # Someone else holds it now, or DynamoDB is unreachable: then the lease lapses.
        log.info("could not release the migration claim: %s", error_code(exc))


def hand_over(db: Database, run: Run, progress: Progress) -> bool:
    """End a run that stopped between pages (its slice is over, or its process is exiting)
    without a failure: publish its verified progress and leave the claim ``waiting`` with no
    delay, so the next request takes it at once and resumes at these cursors.

    The new version also stops this run's own heartbeat should one still be beating (its
    condition names the old version). False when the claim was no longer this run's."""
    sets, values = _progress_update(progress)
    sets += ["#state = :waiting", "nextAttemptAt = :now"]
    try:
        db.client.update_item(
            TableName=db.table,
            Key=keys.migration_claim(),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="#owner = :me AND #state = :running",
            ExpressionAttributeNames={"#owner": "owner", "#state": "state"},
            ExpressionAttributeValues={
                **values,
                ":waiting": s(STATE_WAITING),
                ":new": s(new_id()),
                ":now": s(now_iso()),
                ":me": s(run.run_id),
                ":running": s(STATE_RUNNING),
            },
        )
    except ClientError as exc:
        # Someone else holds it now, or DynamoDB is unreachable: then the lease lapses.
        log.info("could not hand the migration claim over: %s", error_code(exc))
        return False
    return True
