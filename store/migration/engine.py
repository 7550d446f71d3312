"""One run of the copy, from a held claim to the flag (the design is in the package docstring)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from store import keys
from store.batch import BudgetExceeded, chunk_requests, get_many, is_retryable, retry
from store.db import (
    Database,
    RawItem,
    cancellation_reasons,
    error_code,
    new_id,
    now_iso,
    parse_iso,
    s,
)

from .claim import Progress, Run, fence_check, hand_over, publish, release
from .errors import LostClaim, MigrationError, RowRejected, failed_at
from .flag import Flag, write_flag
from .rows import item_copy, member_copy, same_data, setting_copy, workspace_row
from .v1 import scan_v1_items, v1_partition

log = logging.getLogger(__name__)

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
# A fenced copy's transaction: the writer's fence check first, then the rows.
FENCE_CHECK = 0


class _Aborted(MigrationError):
    """A writer stopped because a sibling writer failed first."""


@dataclass
class Settings:
    lease: float = 30.0
    budget: float = 8.0
    writers: int = 4
    segments: int = 4


def _transient_copy_error(exc: Exception) -> bool:
    """Whether a fenced copy that failed this way is worth sending again after a pause."""
    if not isinstance(exc, ClientError):
        return False
    code = error_code(exc)
    return (
        code in RETRYABLE_TRANSACTION_ERRORS
        or (
            code == "TransactionCanceledException"
            and set(cancellation_reasons(exc)) <= RETRYABLE_CANCELLATIONS
        )
        or is_retryable(exc)
    )


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
        deadline: float | None = None,
        stop: threading.Event | None = None,
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
        # A slice: copying stops at the first page boundary after ``deadline`` (on
        # ``monotonic``) or once ``stop`` is set (the process is exiting); the run then ends
        # with its verified progress handed over instead of a flag.
        self.deadline = deadline
        self.stop = stop

    def pause_requested(self) -> bool:
        if self.stop is not None and self.stop.is_set():
            return True
        return self.deadline is not None and self.monotonic() >= self.deadline

    def items_done(self) -> bool:
        done = s("done")
        segments = self.run.claim.total_segments
        with self.progress.lock:
            return all(self.progress.cursors.get(str(i)) == done for i in range(segments))

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
        new_version = new_id()
        try:
            publish(
                self.db,
                self.run.run_id,
                self.version,
                new_version,
                self.progress,
                now_iso(self.wall),
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
            fence_check(self.db, writer, self.run.run_id),
            *({"Put": {"TableName": self.db.table, "Item": row}} for row in rows),
        ]

        def send() -> None:
            try:
                self.db.client.transact_write_items(TransactItems=actions)
            except ClientError as exc:
                reasons = cancellation_reasons(exc)
                if failed_at(reasons, FENCE_CHECK):
                    self.lost.set()
                    raise LostClaim("another run took over: this writer's fence moved") from exc
                if error_code(exc) == "ValidationException" or "ValidationError" in reasons:
                    self._find_rejected_row(rows, writer)
                raise

        retry(
            send,
            transient=_transient_copy_error,
            deadline=deadline,
            monotonic=self.monotonic,
            before_retry=self.check_fence,
            what=f"{len(rows)} copies",
        )

    def _find_rejected_row(self, rows: list[RawItem], writer: int) -> None:
        """A copy refused as invalid: find the row DynamoDB will not take, and name it."""
        for row in rows:
            try:
                self.db.client.transact_write_items(
                    TransactItems=[
                        fence_check(self.db, writer, self.run.run_id),
                        {"Put": {"TableName": self.db.table, "Item": row}},
                    ]
                )
            except ClientError as exc:
                reasons = cancellation_reasons(exc)
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
        claim = self.run.claim
        workspace = workspace_row(
            self.workspace_id,
            members,
            settings,
            created_at=claim.started_at,
            created_by=claim.started_by,
        )
        name = workspace["name"]["S"]
        pairs = [(workspace, workspace)]
        pairs += [(r, setting_copy(self.workspace_id, r)) for r in settings]
        pairs += [(r, member_copy(self.workspace_id, name, r)) for r in members]
        # The last fence is this phase's own, so it never shares one with a segment writer.
        self._copy_verified(pairs, writer=claim.total_segments)
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
            # After a verified page, never before the first: every slice moves the copy on.
            if next_key and self.pause_requested():
                return

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

    def execute(self) -> Flag | None:
        """Copy, verify and flag; raise MigrationError (no flag) when that cannot be done.

        None: the slice ended (deadline or stop) with items left; the progress is verified
        and ready to hand over."""
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
            self._copy_all(members, settings)
            if not self.items_done():
                return None
            self.progress.phase = "finishing"
        finally:
            self.stop_beating.set()
            beater.join()
        self.check_fence()
        return self._write_flag()

    def _copy_all(self, members: list[RawItem], settings: list[RawItem]) -> None:
        """The team phase and every item segment in parallel; the first failure stops all."""
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


def run_migration(db: Database, run: Run, settings: Settings, **options: Any) -> Flag | None:
    """Execute a held run; on failure release the claim with a reason and return None."""
    return conclude(Migration(db, run, settings, **options))


def conclude(migration: Migration) -> Flag | None:
    """Execute ``migration``: the flag, or None after handing over (the slice ended) or
    releasing (it failed) the claim."""
    db, run = migration.db, migration.run
    try:
        flag = migration.execute()
    except LostClaim as exc:
        log.warning("migration run %s stopped: %s", run.run_id, exc)
        return None
    except BudgetExceeded as exc:
        log.warning("migration run %s out of budget: %s", run.run_id, exc)
        release(db, run, "DynamoDB is busy (throttling); retrying shortly.")
        return None
    except MigrationError as exc:
        log.error("migration run %s failed: %s", run.run_id, exc)
        release(db, run, str(exc))
        return None
    except ClientError as exc:
        log.error("migration run %s failed: %s", run.run_id, error_code(exc))
        reason = "DynamoDB is busy; retrying shortly." if is_retryable(exc) else error_code(exc)
        release(db, run, reason)
        return None
    if flag is None:
        log.info(
            "migration run %s paused after its slice: %d items so far",
            run.run_id,
            migration.progress.items,
        )
        hand_over(db, run, migration.progress)
    return flag
