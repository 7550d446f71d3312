"""One run of the copy, from a held claim to the flag (the design is in the package docstring)."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from store import keys
from store.batch import get_many
from store.db import (
    Database,
    RawItem,
    error_code,
    now_iso,
    parse_iso,
    s,
)

from .claim import Progress, Run
from .errors import (
    TRANSIENT,
    Aborted,
    LostClaim,
    RowRejected,
    V1Changed,
    classify,
    operator_reason,
)
from .fenced import FencedWrites, Pair, row_key
from .flag import Flag, write_flag
from .heartbeat import Heartbeating
from .kept import forget_all, record_action
from .lease import Release, hand_over, release
from .rows import (
    COUNT_NAMES,
    ITEM,
    MEMBER,
    SETTING,
    WORKSPACE,
    item_copy,
    member_copy,
    same_data,
    setting_copy,
    storable_problem,
    workspace_row,
)
from .stream import changes_reach_v2_later
from .v1 import count_v1, scan_v1_items, v1_partition

log = logging.getLogger(__name__)


@dataclass
class Settings:
    lease: float = 30.0
    budget: float = 8.0
    writers: int = 4
    segments: int = 4


class Migration(Heartbeating, FencedWrites):
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
            items=claim.items_copied,
            cursors=dict(claim.cursors),
            items_total=claim.items_total,
            # Items kept back on pages an earlier run finished (the team phase recounts).
            kept={"items": claim.kept_by_kind.get("items", 0)},
        )
        self.version = claim.version
        self.confirmed_at = monotonic()
        self.lost = threading.Event()
        self.aborted = threading.Event()
        self.stop_beating = threading.Event()
        # Heartbeat versions sent without a confirmed answer, with when each was sent.
        self.unconfirmed: dict[str, float] = {}
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

    # -- copying --

    def _copy_verified(self, pairs: list[Pair], writer: int) -> Counter[str]:
        """Write the v2 copies (and a record of each row kept back), read them back, and
        rewrite any that did not land identical; return how many were kept back, per count
        name. Rows v2 cannot store are found before writing, and any other row DynamoDB
        refuses on its own is kept back too: no single row stops the copy."""
        kept: list[tuple[str, RawItem, str]] = []
        pending: list[Pair] = []
        for kind, v1, copy in pairs:
            problem = None if kind == WORKSPACE else storable_problem(kind, v1, copy)
            if problem:
                kept.append((kind, v1, problem))
            else:
                pending.append((kind, v1, copy))
        records = self._records(kept)
        for _ in range(3):
            if not pending and not records:
                break
            rejected = self._write([copy for *_, copy in pending], records, writer)
            records = []
            if rejected:
                refused = [p for p in pending if row_key(p[2]) in rejected]
                pending = [p for p in pending if row_key(p[2]) not in rejected]
                newly = [(kind, v1, rejected[row_key(copy)]) for kind, v1, copy in refused]
                kept += newly
                # The records of rows refused now: they never fail, so nothing comes back.
                if self._write([], self._records(newly), writer):
                    raise RowRejected("DynamoDB refused the record of a kept-back row")
            if not pending:
                break
            landed = get_many(
                self.db,
                [{keys.PK: c[keys.PK], keys.SK: c[keys.SK]} for *_, c in pending],
                budget_seconds=self.settings.budget,
            )
            pending = [
                (kind, v1, copy)
                for (kind, v1, copy), found in zip(pending, landed, strict=True)
                if not same_data(v1, found, kind)
            ]
        if pending:
            first = pending[0][2]
            # Most often a v1 server edited the rows meanwhile: worth another run later.
            raise V1Changed(
                f"{len(pending)} rows did not read back identical after 3 writes "
                f"(first: {first[keys.SK]['S']})"
            )
        return Counter(COUNT_NAMES[kind] for kind, _, _ in kept)

    def _records(self, kept: list[tuple[str, RawItem, str]]) -> list[dict[str, Any]]:
        now = now_iso(self.wall)
        return [record_action(self.db.table, kind, v1, reason, now) for kind, v1, reason in kept]

    def _copy_team(self, members: list[RawItem], settings: list[RawItem]) -> None:
        """The workspace row, settings and members: one small write, beside the items."""
        claim = self.run.claim
        name = workspace_row(self.workspace_id, members, settings, created_at="", created_by="")[
            "name"
        ]["S"]
        member_pairs = [(MEMBER, r, member_copy(self.workspace_id, name, r)) for r in members]
        # The workspace counts the owners that will have a member row, not those kept back.
        storable = [v1 for kind, v1, copy in member_pairs if not storable_problem(kind, v1, copy)]
        workspace = workspace_row(
            self.workspace_id,
            storable,
            settings,
            created_at=claim.started_at,
            created_by=claim.started_by,
        )
        pairs: list[Pair] = [(WORKSPACE, workspace, workspace)]
        pairs += [(SETTING, r, setting_copy(self.workspace_id, r)) for r in settings]
        pairs += member_pairs
        # The last fence is this phase's own, so it never shares one with a segment writer.
        kept = self._copy_verified(pairs, writer=claim.total_segments)
        with self.progress.lock:
            self.progress.settings = len(settings) - kept["settings"]
            self.progress.members = len(members) - kept["members"]
            self.progress.kept["settings"] = kept["settings"]
            self.progress.kept["members"] = kept["members"]

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
            pairs = [(ITEM, row, item_copy(self.workspace_id, row)) for row in rows]
            kept = self._copy_verified(pairs, writer=segment)["items"]
            self.progress.page_done(segment, len(rows) - kept, next_key, kept=kept)
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
            # Counted while the heartbeat still beats: a full Scan at scale can outlast a lease.
            kept = self._check_counts()
        finally:
            self.stop_beating.set()
            beater.join()
        self.check_fence()
        return self._write_flag(kept)

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
        failures = [e for f in futures if (e := f.exception()) is not None]
        if failures:
            # The first real cause, not a sibling's "stopped because another part failed".
            causes = [e for e in failures if not isinstance(e, Aborted)]
            raise (causes or failures)[0]

    def _check_counts(self) -> dict[str, int]:
        """Copied + kept back must equal an independent count of the v1 rows, per kind;
        return the kept-back counts. When they differ, v1 changed during the copy: reset
        the claim's cursors and counts, so the next run copies again from the start."""
        v1 = count_v1(self.db, max(1, self.run.claim.total_segments))
        with self.progress.lock:
            copied = {
                "items": self.progress.items,
                "settings": self.progress.settings,
                "members": self.progress.members,
            }
            kept = {name: self.progress.kept.get(name, 0) for name in copied}
        differ = {name for name in copied if copied[name] + kept[name] != v1[name]}
        if not differ:
            return kept
        if changes_reach_v2_later(self.db, self.run.claim.started_at):
            # A v1 server still writing (a rolling deploy): the stream holds every change
            # since the copy began, and the late-write sync applies them after the flag.
            log.info("migration: v1 changed during the copy; the late-write sync applies it")
            return kept
        log.warning(
            "migration run %s: v1 %s changed during the copy (v1 %s, copied %s, kept back %s)",
            self.run.run_id,
            ", ".join(sorted(differ)),
            v1,
            copied,
            kept,
        )
        with self.progress.lock:
            self.progress.cursors.clear()
            self.progress.kept.clear()
            self.progress.items = self.progress.settings = self.progress.members = 0
        forget_all(self.db)
        # The release after this failure publishes the reset cursors with it.
        raise V1Changed("v1 rows changed during the copy; copying again")

    def _write_flag(self, kept: dict[str, int]) -> Flag:
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
            kept_back=sum(kept.values()),
            kept_by_kind=kept,
        )
        if write_flag(self.db, flag, fence=(self.run.run_id, self.version), progress=self.progress):
            return flag
        # Only a claim holder writes the flag, so another one means our claim was lost.
        raise LostClaim("the flag was already written by another run")


def run_migration(db: Database, run: Run, settings: Settings, **options: Any) -> Flag | None:
    """Execute a held run: the flag, or None (see ``conclude``)."""
    return conclude(Migration(db, run, settings, **options))


def conclude(migration: Migration) -> Flag | None:
    """Execute ``migration``: the flag, or None after handing the claim over (its slice
    ended, or the process is stopping) or releasing it (it failed, classified).

    One log line per failed attempt says how it ended and why: a warning for a transient
    failure (the claim waits out a backoff, kept in the claim across runs), an error for a
    permanent one (the claim is failed until the operator's ``migration retry``)."""
    db, run = migration.db, migration.run
    try:
        flag = migration.execute()
    except LostClaim as exc:
        log.warning("migration run %s stopped: %s", run.run_id, exc)
        # The claim may still be ours (no heartbeat confirmed for half a lease after a network
        # blip): hand it back rather than make everyone wait a lease. The release holds only
        # while the claim is ours and running, so it changes nothing once another run has it.
        release(db, run, Release.transient(str(exc)), progress=migration.progress)
        return None
    except BaseException as exc:
        if migration.progress.advanced:
            run.claim.failures = 0  # this run made progress: its failure is the first
        kind, reason = classify(exc), operator_reason(exc)
        level = logging.WARNING if kind == TRANSIENT else logging.ERROR
        log.log(
            level,
            "migration run %s failed (attempt %d, %s, failure %d in a row): %s",
            run.run_id,
            run.claim.attempt,
            kind,
            run.claim.failures + 1,
            reason,
        )
        # With the verified progress (the cursors a reset cleared, too).
        release(db, run, Release(kind, reason), progress=migration.progress)
        if not isinstance(exc, Exception):
            raise  # the interpreter is stopping (KeyboardInterrupt, SystemExit)
        return None
    if flag is None:
        log.info(
            "migration run %s paused after its slice: %d items so far",
            run.run_id,
            migration.progress.items,
        )
        hand_over(db, run, migration.progress)
    return flag
