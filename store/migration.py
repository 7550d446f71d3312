"""Copy-on-first-login: move v1 rows into the default workspace, once, verified.

How it stays exactly-once and resumable (PRODUCT.md promises 1-4, 7):

* A **claim row** is written with a condition before anything is copied. It fixes the default
  workspace id, so every run that ever works on the migration fills the same workspace.
* The holder **heartbeats**: it changes the claim's random ``version`` at least every third of
  the lease. A contender takes over only after seeing the *same* version for a whole lease on
  its *own* monotonic clock (the DynamoDB lock client's rule), so no two hosts' clocks are
  compared, and a takeover is a conditional write on the version it saw.
* The copy reads v1 with a strongly consistent, parallel, paginated Scan and writes raw
  AttributeValues with BatchWriteItem (≤25 per call), retrying UnprocessedItems and throttling
  with capped, jittered backoff. Each page is read back and compared before it counts, and the
  claim records, per scan segment, the last page that was verified: a later run resumes there.
* The **flag** is written last, in one transaction with a check that the claim is still ours,
  with a client request token so a retry after a lost answer is recognised as our own write.

The holder stops copying as soon as it cannot show a heartbeat confirmed within half a lease,
so a holder that was paused (or cut off) does not keep writing after a takeover.

The claim deliberately has no TTL: it fixes the workspace id, and a claim that vanished after
a crash would let the next run start a second workspace. Whether it has lapsed is judged only
by its version standing still, never by a stored expiry time.

Defaults: a 30 s lease rides out garbage-collection pauses and slow networks without a
takeover, and a crashed holder costs people at most that long on the preparing page; an 8 s
budget per batch lets the SDK's and our own retries work before the page says "retrying".
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from . import keys
from .batch import Backoff, BudgetExceeded, chunk_requests, get_many, is_retryable
from .db import Database, RawItem, error_code, n, now_iso, number, parse_iso, s, text

log = logging.getLogger(__name__)

ORIGIN = "v1-migration"
DEFAULT_WORKSPACE_NAME = "Team workspace"
SCAN_PAGE_LIMIT = 200
MAX_TRANSACTION_ITEMS = 100
# DynamoDB's 4 MB per transaction, less a margin for the request around the items.
TRANSACTION_BYTES = 4 * 1024 * 1024 - 64 * 1024
RETRYABLE_TRANSACTION_ERRORS = frozenset(
    {"TransactionConflictException", "TransactionInProgressException"}
)
# Cancellation reasons that say "try again", per item ("None" for the items that were fine).
RETRYABLE_CANCELLATIONS = frozenset(
    {"None", None, "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)
# Attributes a v2 row gains that its v1 row did not have; everything else must be identical.
ADDED_ATTRIBUTES = frozenset({keys.PK, keys.SK, keys.GSI1PK, keys.GSI1SK, "workspaceName"})

STATE_RUNNING = "running"
STATE_WAITING = "waiting"
STATE_COMPLETE = "complete"


class MigrationError(Exception):
    """The run stopped before the flag; the message is safe to show an operator."""


class LostClaim(MigrationError):
    """Another run took the claim over; this one must not write anything more."""


class _Aborted(MigrationError):
    """A writer stopped because a sibling writer failed first."""


class RowRejected(MigrationError):
    """DynamoDB refused one v1 row for good (for example: too large with its v2 keys)."""


# --- raw rows ---------------------------------------------------------------------------------


def _normal(value: dict[str, Any]) -> Any:
    """A comparable form of an AttributeValue: sets compare without order."""
    ((kind, inner),) = value.items()
    if kind in ("SS", "NS"):
        return kind, frozenset(inner)
    if kind == "BS":
        return kind, frozenset(bytes(x) for x in inner)
    if kind == "B":
        return kind, bytes(inner)
    if kind == "M":
        return kind, {name: _normal(v) for name, v in inner.items()}
    if kind == "L":
        return kind, [_normal(v) for v in inner]
    return kind, inner


def same_data(v1_row: RawItem, v2_row: RawItem | None) -> bool:
    """Whether a v2 copy holds exactly the v1 row's attributes (keys and index keys aside)."""
    if v2_row is None:
        return False
    mine = {k: v for k, v in v1_row.items() if k not in (keys.PK, keys.SK)}
    theirs = {k: v for k, v in v2_row.items() if k not in ADDED_ATTRIBUTES}
    if mine.keys() != theirs.keys():
        return False
    return all(_normal(mine[k]) == _normal(theirs[k]) for k in mine)


def _data(row: RawItem) -> RawItem:
    return {k: v for k, v in row.items() if k not in (keys.PK, keys.SK)}


def item_copy(workspace_id: str, row: RawItem) -> RawItem:
    item_id = keys.suffix(row[keys.PK]["S"], keys.V1_ITEM_PREFIX)
    return {**_data(row), **keys.item(workspace_id, item_id)}


def setting_copy(workspace_id: str, row: RawItem) -> RawItem:
    return {**_data(row), **keys.setting(workspace_id, row[keys.SK]["S"])}


def member_copy(workspace_id: str, workspace_name: str, row: RawItem) -> RawItem:
    user_id = row[keys.SK]["S"]
    return {
        **_data(row),
        **keys.member(workspace_id, user_id),
        **keys.member_index_keys(workspace_id, user_id),
        "workspaceName": s(workspace_name),
    }


# --- reading v1 -------------------------------------------------------------------------------


def v1_partition(db: Database, pk: str) -> list[RawItem]:
    """All rows of a small v1 partition (SETTINGS or MEMBERS), strongly consistent."""
    return db.query_all(
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": s(pk)},
        ConsistentRead=True,
    )


def _v1_item_scan_params(db: Database) -> dict[str, Any]:
    return {
        "TableName": db.table,
        "FilterExpression": "begins_with(PK, :prefix) AND SK = :sk",
        "ExpressionAttributeValues": {":prefix": s(keys.V1_ITEM_PREFIX), ":sk": s(keys.V1_ITEM_SK)},
        # Strongly consistent: every v1 write completed before the scan began is seen.
        "ConsistentRead": True,
    }


def scan_v1_items(
    db: Database,
    *,
    segment: int = 0,
    total_segments: int = 1,
    start_key: dict[str, Any] | None = None,
    page_limit: int = SCAN_PAGE_LIMIT,
) -> Iterator[tuple[list[RawItem], dict[str, Any] | None]]:
    """Pages of v1 item rows with the key to resume after each; None once the end is reached."""
    params = {**_v1_item_scan_params(db), "Limit": page_limit}
    if total_segments > 1:
        params.update(Segment=segment, TotalSegments=total_segments)
    if start_key:
        params["ExclusiveStartKey"] = start_key
    while True:
        page = db.client.scan(**params)
        last_key = page.get("LastEvaluatedKey")
        yield page.get("Items", []), last_key
        if not last_key:
            return
        params["ExclusiveStartKey"] = last_key


def has_v1_data(db: Database) -> bool:
    """Whether any v1 team data exists; on a fresh install the table is nearly empty."""
    if any(db.has_rows(pk, consistent=True) for pk in (keys.V1_MEMBERS_PK, keys.V1_SETTINGS_PK)):
        return True
    return any(rows for rows, _ in scan_v1_items(db, page_limit=1000))


def count_v1(db: Database, segments: int = 4) -> dict[str, int]:
    """Exact v1 counts (a full Scan for items, run in parallel segments)."""

    def count_segment(segment: int) -> int:
        params = {**_v1_item_scan_params(db), "Select": "COUNT"}
        if segments > 1:
            params.update(Segment=segment, TotalSegments=segments)
        total = 0
        while True:
            page = db.client.scan(**params)
            total += page["Count"]
            if "LastEvaluatedKey" not in page:
                return total
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    with ThreadPoolExecutor(max_workers=segments) as pool:
        items = sum(pool.map(count_segment, range(segments)))
    return {
        "items": items,
        "settings": len(v1_partition(db, keys.V1_SETTINGS_PK)),
        "members": len(v1_partition(db, keys.V1_MEMBERS_PK)),
    }


# --- the flag and the claim -------------------------------------------------------------------


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
        )


def read_flag(db: Database) -> Flag | None:
    row = db.get(keys.migration_flag(), consistent=True)
    return Flag.from_row(row) if row else None


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
    run_id = str(uuid.uuid4())
    if current is ...:
        current = read_claim(db)
    if current is None:
        claim = Claim(
            workspace_id=uuid.uuid4().hex,
            owner=run_id,
            version=str(uuid.uuid4()),
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
        claim_row = {
            **keys.migration_claim(),
            "workspaceId": s(claim.workspace_id),
            "owner": s(run_id),
            "version": s(claim.version),
            "state": s(STATE_RUNNING),
            "startedAt": s(claim.started_at),
            "startedBy": s(user_id),
            "phase": s(claim.phase),
            "totalSegments": n(segments),
            "attempt": n(1),
            "leaseSeconds": n(lease),
            "heartbeatAt": s(now_iso(wall)),
        }
        first = {
            "Put": {
                "TableName": db.table,
                "Item": claim_row,
                # Only the first claimant ever creates the row (and so the workspace id).
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
        if not _transact(db, [first, *_fence_puts(db, run_id, segments + 1)]):
            return None
        return Run(run_id, user_id, claim)

    if current.state == STATE_COMPLETE:
        return None
    if current.state != STATE_WAITING and not observer.lapsed(current, lease, monotonic()):
        return None
    new_version = str(uuid.uuid4())
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
                ":me": s(run_id),
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
    if not _transact(db, [takeover, *_fence_puts(db, run_id, current.total_segments + 1)]):
        return None
    log.info("migration claim taken over (attempt %d)", current.attempt + 1)
    current.owner, current.version, current.state = run_id, new_version, STATE_RUNNING
    current.attempt += 1
    return Run(run_id, user_id, current)


def _fence_puts(db: Database, owner: str, writers: int) -> list[dict[str, Any]]:
    return [
        {"Put": {"TableName": db.table, "Item": {**keys.migration_fence(i), "owner": s(owner)}}}
        for i in range(writers)
    ]


def _transact(db: Database, actions: list[dict[str, Any]]) -> bool:
    """Run a claim transaction; False when a condition failed or it raced another writer."""
    try:
        db.client.transact_write_items(TransactItems=actions)
    except ClientError as exc:
        if error_code(exc) in ("TransactionCanceledException", "TransactionConflictException"):
            return False
        raise
    return True


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Progress:
    """What the holder has finished, published with every heartbeat."""

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


@dataclass
class Settings:
    lease: float = 30.0
    budget: float = 8.0
    writers: int = 4
    segments: int = 4


class Migration:
    """One run of the copy, from a held claim to the flag."""

    def __init__(
        self,
        db: Database,
        run: Run,
        settings: Settings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        on_page: Callable[[int], None] | None = None,
    ) -> None:
        self.db = db
        self.run = run
        self.settings = settings
        self.monotonic = monotonic
        self.wall = wall
        self.on_page = on_page
        claim = run.claim
        self.workspace_id = claim.workspace_id
        self.progress = Progress(
            items=claim.items_copied, cursors=dict(claim.cursors), items_total=claim.items_total
        )
        self.version = claim.version
        self.confirmed_at = monotonic()
        self.lost = threading.Event()
        self.aborted = threading.Event()
        self.stop_beating = threading.Event()

    # The fence: copying continues only while a recent heartbeat proves the claim is ours.
    def check_fence(self) -> None:
        if self.aborted.is_set():
            raise _Aborted("stopped because another part of the copy failed")
        if self.lost.is_set():
            raise LostClaim("another run took over the migration")
        if self.monotonic() - self.confirmed_at > self.settings.lease / 2:
            self.lost.set()
            raise LostClaim("no heartbeat confirmed for half a lease; stopping to be safe")

    def heartbeat(self) -> bool:
        """Move the claim's version and publish progress; False once the claim is not ours."""
        new_version = str(uuid.uuid4())
        values = self.progress.snapshot()
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
        if self.progress.advanced:
            # The earlier run's trouble is over once this one makes progress.
            sets.append("lastError = :none")
            values[":none"] = s("")
        try:
            self.db.client.update_item(
                TableName=self.db.table,
                Key=keys.migration_claim(),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="#owner = :me AND version = :current",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={
                    **values,
                    ":new": s(new_version),
                    ":now": s(now_iso(self.wall)),
                    ":me": s(self.run.run_id),
                    ":current": s(self.version),
                },
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                self.lost.set()
                return False
            log.warning("migration heartbeat failed (%s); will retry", error_code(exc))
            return True
        self.version = new_version
        self.confirmed_at = self.monotonic()
        return True

    def _beat_forever(self) -> None:
        interval = min(self.settings.lease / 3, 1.0)
        while not self.stop_beating.wait(interval):
            if not self.heartbeat():
                return

    # -- copying --

    def _fence_check(self, writer: int) -> dict[str, Any]:
        return {
            "ConditionCheck": {
                "TableName": self.db.table,
                "Key": keys.migration_fence(writer),
                "ConditionExpression": "#owner = :me",
                "ExpressionAttributeNames": {"#owner": "owner"},
                "ExpressionAttributeValues": {":me": s(self.run.run_id)},
            }
        }

    def _write(self, rows: list[RawItem], writer: int) -> None:
        deadline = self.monotonic() + self.settings.budget
        requests = ({"PutRequest": {"Item": row}} for row in rows)
        for chunk in chunk_requests(
            requests, max_count=MAX_TRANSACTION_ITEMS - 1, max_bytes=TRANSACTION_BYTES
        ):
            self.check_fence()
            self._write_fenced([r["PutRequest"]["Item"] for r in chunk], writer, deadline)

    def _write_fenced(self, rows: list[RawItem], writer: int, deadline: float) -> None:
        """Put rows in one transaction that holds only while this writer's fence is ours.

        DynamoDB itself rejects the write once another run has taken over, however late it
        arrives (a paused process, a request re-sent by the SDK, a slow network): no check
        made in this process before sending could promise that."""
        actions = [
            self._fence_check(writer),
            *({"Put": {"TableName": self.db.table, "Item": row}} for row in rows),
        ]
        backoff = Backoff()
        while True:
            try:
                self.db.client.transact_write_items(TransactItems=actions)
                return
            except ClientError as exc:
                code = error_code(exc)
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    self.lost.set()
                    raise LostClaim("another run took over: this writer's fence moved") from exc
                if code == "ValidationException" or "ValidationError" in reasons:
                    self._find_rejected_row(rows, writer)
                    raise
                transient = code in RETRYABLE_TRANSACTION_ERRORS or (
                    code == "TransactionCanceledException"
                    and set(reasons) <= RETRYABLE_CANCELLATIONS
                )
                if not (transient or is_retryable(exc)):
                    raise
            if self.monotonic() >= deadline:
                raise BudgetExceeded(f"{len(rows)} copies still refused when the budget ran out")
            backoff.pause(deadline)
            self.check_fence()

    def _find_rejected_row(self, rows: list[RawItem], writer: int) -> None:
        """A copy refused as invalid: find the row DynamoDB will not take, and name it."""
        for row in rows:
            try:
                self.db.client.transact_write_items(
                    TransactItems=[
                        self._fence_check(writer),
                        {"Put": {"TableName": self.db.table, "Item": row}},
                    ]
                )
            except ClientError as exc:
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if error_code(exc) != "ValidationException" and "ValidationError" not in reasons:
                    raise
                message = exc.response.get("Error", {}).get("Message", "")
                raise RowRejected(
                    f"DynamoDB refused {row[keys.PK]['S']} / {row[keys.SK]['S']}: {message}"
                ) from exc

    def _copy_verified(self, pairs: list[tuple[RawItem, RawItem]], writer: int) -> None:
        """Write v2 copies, read them back, and rewrite any that did not land identical."""
        pending = pairs
        for _ in range(3):
            if not pending:
                return
            self._write([copy for _, copy in pending], writer)
            landed = get_many(
                self.db,
                [{keys.PK: c[keys.PK], keys.SK: c[keys.SK]} for _, c in pending],
                budget_seconds=self.settings.budget,
            )
            pending = [
                (v1, copy)
                for (v1, copy), found in zip(pending, landed, strict=True)
                if not same_data(v1, found)
            ]
        if pending:
            first = pending[0][1]
            raise MigrationError(
                f"{len(pending)} rows did not read back identical after 3 writes "
                f"(first: {first[keys.SK]['S']})"
            )

    def _copy_team(self, members: list[RawItem], settings: list[RawItem]) -> None:
        """The workspace row, settings and members: one small write, beside the items."""
        workspace = self._workspace_row(members, settings)
        name = workspace["name"]["S"]
        pairs = [(workspace, workspace)]
        pairs += [(r, setting_copy(self.workspace_id, r)) for r in settings]
        pairs += [(r, member_copy(self.workspace_id, name, r)) for r in members]
        # The last fence is this phase's own, so it never shares one with a segment writer.
        self._copy_verified(pairs, writer=self.run.claim.total_segments)
        with self.progress.lock:
            self.progress.settings, self.progress.members = len(settings), len(members)

    def _copy_segment(self, segment: int) -> None:
        cursor = self.progress.cursors.get(str(segment))
        if cursor == s("done"):
            return
        start_key = cursor["M"] if cursor else None
        for rows, next_key in scan_v1_items(
            self.db,
            segment=segment,
            total_segments=self.run.claim.total_segments,
            start_key=start_key,
        ):
            self.check_fence()
            copies = [(row, item_copy(self.workspace_id, row)) for row in rows]
            self._copy_verified(copies, writer=segment)
            self.progress.page_done(segment, len(rows), next_key)
            if self.on_page:
                self.on_page(segment)

    def _estimate_items(self, members: int, settings: int) -> None:
        """A total for the progress bar only: an exact count would be a second full Scan
        competing with the copy, so take DynamoDB's table-wide item count instead.

        At migration time the table is v1 rows plus accounts (two rows each), which this
        subtracts; the service refreshes the number every few hours, so it is a guess, and
        the page shows plain counts whenever the copy overtakes it."""
        try:
            table = self.db.client.describe_table(TableName=self.db.table)["Table"]
        except ClientError as exc:
            log.info("no item count for the progress bar: %s", error_code(exc))
            return
        claim_rows = 2 + self.run.claim.total_segments  # the claim and its fences
        estimate = int(table.get("ItemCount", 0)) - settings - 3 * members - claim_rows
        if estimate > 0:
            with self.progress.lock:
                self.progress.items_total = estimate

    def _workspace_row(self, members: list[RawItem], settings: list[RawItem]) -> RawItem:
        name = DEFAULT_WORKSPACE_NAME
        for row in settings:
            if row[keys.SK]["S"] == "teamName" and row.get("value", {}).get("S", "").strip():
                name = row["value"]["S"].strip()[:100]
        owners = sum(1 for row in members if text(row, "role") == "owner")
        claim = self.run.claim
        return {
            **keys.workspace(self.workspace_id),
            "name": s(name),
            "createdAt": s(claim.started_at),
            "createdBy": s(claim.started_by),
            "origin": s(ORIGIN),
            "ownerCount": n(owners),
        }

    def execute(self) -> Flag:
        """Copy, verify and flag; raise MigrationError (no flag) when that cannot be done."""
        beater = threading.Thread(target=self._beat_forever, name="migration-heartbeat")
        beater.daemon = True
        beater.start()
        try:
            self.progress.phase = "members and settings"
            members = v1_partition(self.db, keys.V1_MEMBERS_PK)
            settings = v1_partition(self.db, keys.V1_SETTINGS_PK)
            if self.progress.items_total is None:
                # Before this run writes anything, so its own rows are not counted.
                self._estimate_items(len(members), len(settings))

            self.progress.phase = "items"
            segments = self.run.claim.total_segments
            # The team phase is submitted first, so it never waits behind the item segments.
            workers = max(1, min(segments + 1, self.settings.writers))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(self._copy_team, members, settings)]
                futures += [pool.submit(self._copy_segment, i) for i in range(segments)]
                for future in as_completed(futures):
                    if future.exception() is not None:
                        # Stop the other segments at their next page instead of finishing.
                        self.aborted.set()
            failures = [f.exception() for f in futures if f.exception() is not None]
            if failures:
                # The first real cause, not a sibling's "stopped because another part failed".
                causes = [e for e in failures if not isinstance(e, _Aborted)]
                raise (causes or failures)[0]
            self.progress.phase = "finishing"
        finally:
            self.stop_beating.set()
            beater.join()
        self.check_fence()
        return self._write_flag()

    def _write_flag(self) -> Flag:
        """The flag and the claim's completion in one transaction, fenced by the claim."""
        claim = self.run.claim
        started = parse_iso(claim.started_at)
        flag = Flag(
            migrated_by=claim.started_by,
            migrated_at=now_iso(self.wall),
            workspace_id=self.workspace_id,
            items=self.progress.items,
            settings=self.progress.settings,
            members=self.progress.members,
            duration_ms=int((self.wall() - started.timestamp()) * 1000),
            run_id=self.run.run_id,
        )
        if write_flag(self.db, flag, fence=(self.run.run_id, self.version), progress=self.progress):
            return flag
        # Only a claim holder writes the flag, so another one means our claim was lost.
        raise LostClaim("the flag was already written by another run")


def _flag_item(flag: Flag) -> RawItem:
    item = {
        **keys.migration_flag(),
        "migratedBy": s(flag.migrated_by),
        "migratedAt": s(flag.migrated_at),
        "items": n(flag.items),
        "settings": n(flag.settings),
        "members": n(flag.members),
        "durationMs": n(flag.duration_ms),
        "runId": s(flag.run_id),
    }
    if flag.workspace_id:
        item["workspaceId"] = s(flag.workspace_id)
    return item


def write_flag(
    db: Database,
    flag: Flag,
    *,
    fence: tuple[str, str] | None = None,
    progress: Progress | None = None,
    attempts: int = 4,
) -> bool:
    """Write the flag once; True if this call (or its lost earlier try) wrote it."""
    actions: list[dict[str, Any]] = [
        {
            "Put": {
                "TableName": db.table,
                "Item": _flag_item(flag),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
    ]
    if fence:
        owner, version = fence
        values = progress.snapshot() if progress else {}
        actions.append(
            {
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
                        ":items": values.get(":items", n(flag.items)),
                        ":settings": values.get(":settings", n(flag.settings)),
                        ":members": values.get(":members", n(flag.members)),
                        ":me": s(owner),
                        ":version": s(version),
                    },
                }
            }
        )
    backoff = Backoff()
    deadline = time.monotonic() + 10
    for attempt in range(attempts):
        try:
            # The token makes a retry after a lost answer succeed as the same write (R8).
            db.client.transact_write_items(TransactItems=actions, ClientRequestToken=flag.run_id)
            return True
        except (ReadTimeoutError, ConnectionClosedError, EndpointConnectionError):
            # The outcome is unknown: the same request with the same token is safe to repeat.
            if attempt + 1 < attempts:
                backoff.pause(deadline)
                continue
            raise
        except ClientError as exc:
            code = error_code(exc)
            if code == "TransactionCanceledException":
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    existing = read_flag(db)
                    # Our own earlier try may have landed with its answer lost.
                    return existing is not None and existing.run_id == flag.run_id
                if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                    raise LostClaim("the claim changed hands before the flag") from exc
                if "TransactionConflict" in reasons and attempt + 1 < attempts:
                    backoff.pause(deadline)
                    continue
            if (is_retryable(exc) or code == "TransactionConflictException") and (
                attempt + 1 < attempts
            ):
                backoff.pause(deadline)
                continue
            raise
    return False


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
                ":new": s(str(uuid.uuid4())),
                ":me": s(run.run_id),
                ":running": s(STATE_RUNNING),
            },
        )
    except ClientError as exc:
        # Someone else holds it now, or DynamoDB is unreachable: then the lease lapses.
        log.info("could not release the migration claim: %s", error_code(exc))


def finish_without_data(db: Database, user_id: str) -> None:
    """A fresh install: record that there was nothing to migrate, with zero counts."""
    run_id = str(uuid.uuid4())
    write_flag(
        db,
        Flag(
            migrated_by=user_id,
            migrated_at=now_iso(),
            workspace_id=None,
            items=0,
            settings=0,
            members=0,
            duration_ms=0,
            run_id=run_id,
        ),
    )


def run_migration(
    db: Database,
    run: Run,
    settings: Settings,
    **options: Any,
) -> Flag | None:
    """Execute a held run; on failure release the claim with a reason and return None."""
    try:
        return Migration(db, run, settings, **options).execute()
    except LostClaim as exc:
        log.warning("migration run %s stopped: %s", run.run_id, exc)
    except BudgetExceeded as exc:
        log.warning("migration run %s out of budget: %s", run.run_id, exc)
        release(db, run, "DynamoDB is busy (throttling); retrying shortly.")
    except MigrationError as exc:
        log.error("migration run %s failed: %s", run.run_id, exc)
        release(db, run, str(exc))
    except ClientError as exc:
        log.error("migration run %s failed: %s", run.run_id, error_code(exc))
        reason = "DynamoDB is busy; retrying shortly." if is_retryable(exc) else error_code(exc)
        release(db, run, reason)
    return None
