"""One run of the copy, from a held claim to the flag (the design is in the package docstring)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from store import keys
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

from .bulk import BulkCopies
from .claim import Progress, Run
from .errors import (
    TRANSIENT,
    Aborted,
    LostClaim,
    RowRejected,
    classify,
    operator_reason,
)
from .fenced import HOLDER, Pair, row_key
from .flag import Flag, write_flag
from .heartbeat import TAKEN_OVER, Heartbeating
from .kept import record_action
from .lease import Release, hand_over, release
from .rows import (
    ITEM,
    MEMBER,
    SETTING,
    item_copy,
    member_copy,
    setting_copy,
    storable_problem,
    workspace_row,
)
from .v1 import scan_v1_items, v1_partition
from .verify import Verification

log = logging.getLogger(__name__)


@dataclass
class Settings:
    lease: float = 30.0
    budget: float = 8.0
    writers: int = 4
    segments: int = 4


class Migration(Heartbeating, BulkCopies, Verification):
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
        self.lost_reason = TAKEN_OVER
        self.aborted = threading.Event()
        self.stop_beating = threading.Event()
        # Heartbeat versions sent without a confirmed answer, with when each was sent.
        self.unconfirmed: dict[str, float] = {}
        # A slice: copying stops at the first page boundary after ``deadline`` (on
        # ``monotonic``) or once ``stop`` is set (the process is exiting); the run then ends
        # with its verified progress handed over instead of a flag.
        self.deadline = deadline
        self.stop = stop
        # Set when the copy must start over in a new partition (v1 changed under it).
        self.afresh = False
        # The v1 row of each member copy, by its v2 key (for a kept-back record).
        self.member_rows: dict[tuple[str, str], RawItem] = {}
        # How many v1 members and settings there are, once read (for the estimate).
        self.team_sizes = (0, 0)

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

    def _copy_team(self) -> tuple[list[RawItem], list[RawItem]]:
        """Read v1's members and settings and copy the settings (one small bulk write into
        the partition), beside the item segments; the members and settings read."""
        members, settings = self._read_team()
        self.team_sizes = len(members), len(settings)
        pairs: list[Pair] = [(SETTING, r, setting_copy(self.workspace_id, r)) for r in settings]
        # The last fence is this phase's own, so it never shares one with a segment writer.
        kept = self._copy_page(pairs, writer=self.run.claim.total_segments)
        with self.progress.lock:
            self.progress.settings = len(settings) - kept["settings"]
            self.progress.kept["settings"] = kept["settings"]
        return members, settings

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
            kept = self._copy_page(pairs, writer=segment)["items"]
            self.progress.page_done(segment, len(rows) - kept, next_key, kept=kept)
            if self.on_page:
                self.on_page(segment)
            # After a finished page, never before the first: every slice moves the copy on.
            if next_key and self.pause_requested():
                return

    def _estimate_items(self) -> None:
        """A total for the progress bar only: an exact count would be a second full Scan
        competing with the copy, so take DynamoDB's table-wide item count instead.

        At migration time the table is v1 rows plus accounts (two rows each), which this
        subtracts; the service refreshes the number every few hours, so it is a guess, and
        the page shows plain counts whenever the copy overtakes it. Asked only once a run
        outlasts ``ESTIMATE_AFTER_SECONDS`` or a slice ends without a total: nobody sees a
        progress bar before then, and a run that is done by then pays no DescribeTable."""
        if self.progress.items_total is not None:
            return
        table = self._describe()
        members, settings = self.team_sizes
        claim_rows = 2 + self.run.claim.total_segments  # the claim and its fences
        estimate = int(table.get("ItemCount", 0)) - settings - 3 * members - claim_rows
        if estimate > 0:
            with self.progress.lock:
                self.progress.items_total = estimate

    def _describe(self) -> dict[str, Any]:
        try:
            return dict(self.db.client.describe_table(TableName=self.db.table)["Table"])
        except ClientError as exc:
            log.info("no item count for the progress bar: %s", error_code(exc))
        except BotoCoreError as exc:  # a timer thread's error would only reach stderr
            log.info("no item count for the progress bar: %s", type(exc).__name__)
        return {}

    def _read_team(self) -> tuple[list[RawItem], list[RawItem]]:
        """The v1 members and settings, read side by side: one round trip's wait."""
        with ThreadPoolExecutor(max_workers=2) as pool:
            members = pool.submit(v1_partition, self.db, keys.V1_MEMBERS_PK)
            settings = pool.submit(v1_partition, self.db, keys.V1_SETTINGS_PK)
            return members.result(), settings.result()

    def execute(self) -> Flag | None:
        """Copy, verify and flag; raise MigrationError (no flag) when that cannot be done.

        None: the slice ended (deadline or stop) with items left; the progress is verified
        and ready to hand over."""
        beater = threading.Thread(target=self._beat_forever, name="migration-heartbeat")
        beater.daemon = True
        beater.start()
        estimate = threading.Timer(ESTIMATE_AFTER_SECONDS, self._estimate_items)
        estimate.daemon = True
        estimate.start()
        try:
            self.progress.phase = "items"
            members, settings = self._copy_all()
            if not self.items_done():
                estimate.cancel()
                self._estimate_items()  # the hand-over publishes it for the next slice
                return None
            self.progress.phase = "finishing"
            team = self._team_rows(members, settings)
            # Counted while the heartbeat still beats: a full Scan at scale can outlast a lease.
            kept = self._check_counts()
        finally:
            estimate.cancel()
            self.stop_beating.set()
            beater.join()
        self.check_fence()
        return self._write_flag(kept, team)

    def _copy_all(self) -> tuple[list[RawItem], list[RawItem]]:
        """The team's reads and settings, and every item segment, in parallel; the first
        failure stops all. The v1 members and settings read."""
        segments = self.run.claim.total_segments
        # The small team task gets a thread of its own, so no segment waits behind it; the
        # team is submitted first, so it never waits behind a segment either.
        workers = segments + 1 if self.settings.writers >= segments else self.settings.writers
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            team = pool.submit(self._copy_team)
            futures: list[Future[Any]] = [team]
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
        return team.result()

    def _team_rows(self, members: list[RawItem], settings: list[RawItem]) -> list[RawItem]:
        """The rows that make the workspace visible: its WORKSPACE row and the member rows
        (with the ByUser index keys), written fenced with the flag. Members v2 cannot store
        are kept back here (their records fenced too)."""
        claim = self.run.claim
        name = workspace_row(self.workspace_id, members, settings, created_at="", created_by="")[
            "name"
        ]["S"]
        pairs = [(MEMBER, r, member_copy(self.workspace_id, name, r)) for r in members]
        self.member_rows = {row_key(copy): v1 for _, v1, copy in pairs}
        refused = [(k, v1, p) for k, v1, c in pairs if (p := storable_problem(k, v1, c))]
        if refused and self._write([], self._records(refused), claim.total_segments):
            raise RowRejected("DynamoDB refused the record of a kept-back row")
        storable = [(v1, c) for k, v1, c in pairs if not storable_problem(k, v1, c)]
        with self.progress.lock:
            self.progress.members = len(storable)
            self.progress.kept["members"] = len(refused)
        # The workspace counts the owners that will have a member row, not those kept back.
        workspace = workspace_row(
            self.workspace_id,
            [v1 for v1, _ in storable],
            settings,
            created_at=claim.started_at,
            created_by=claim.started_by,
        )
        return [workspace, *(copy for _, copy in storable)]

    def _records(self, kept: list[tuple[str, RawItem, str]]) -> list[dict[str, Any]]:
        now = now_iso(self.wall)
        return [record_action(self.db.table, kind, v1, reason, now) for kind, v1, reason in kept]

    def _write_flag(self, kept: dict[str, int], team: list[RawItem]) -> Flag:
        """The flag, the claim's completion and the rows that make the workspace visible,
        in one transaction fenced by the claim (more members than fit: those first, fenced)."""
        if len(team) > MAX_WITH_FLAG:
            kept, team = self._write_team_first(team, kept), []
        fence = (self.run.run_id, self.version)
        flag = self._flag(kept)
        try:
            written = write_flag(self.db, flag, fence=fence, progress=self.progress, rows=team)
        except ClientError as exc:
            refused = error_code(exc) == "ValidationException"
            if not team or not (refused or "ValidationError" in cancellation_reasons(exc)[2:]):
                raise
            # A member row DynamoDB refuses on its own: found and kept back, then the flag.
            flag = self._flag(self._write_team_first(team, kept))
            written = write_flag(self.db, flag, fence=fence, progress=self.progress, token=new_id())
        if written:
            return flag
        # Only a claim holder writes the flag, so another one means our claim was lost.
        raise LostClaim("the flag was already written by another run")

    def _flag(self, kept: dict[str, int]) -> Flag:
        claim = self.run.claim
        started = parse_iso(claim.started_at)
        return Flag(
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

    def _write_team_first(self, team: list[RawItem], kept: dict[str, int]) -> dict[str, int]:
        """Write the workspace and member rows fenced, before the flag; members DynamoDB
        refuses on their own are kept back (and recorded). The kept-back counts, updated."""
        rejected = self._write(team, [], HOLDER)
        refused = [
            (MEMBER, self.member_rows[row_key(copy)], why)
            for copy in team
            if (why := rejected.get(row_key(copy)))
        ]
        if refused and self._write([], self._records(refused), self.run.claim.total_segments):
            raise RowRejected("DynamoDB refused the record of a kept-back row")
        with self.progress.lock:
            self.progress.members -= len(refused)
            self.progress.kept["members"] = self.progress.kept.get("members", 0) + len(refused)
        return {**kept, "members": kept.get("members", 0) + len(refused)}


# A run still copying after this long may be watched (the gated request waits up to a slice,
# 1 s by default, before it shows the preparing page), so it asks for the progress bar's total
# then. A run done sooner never needs one, and beside the copy it cost: at 1,000 items on
# DynamoDB Local (three runs of seven) the migration took 1.29-1.45x the floor with it and
# 1.04-1.26x without.
ESTIMATE_AFTER_SECONDS = 1.0

# The flag transaction's own two actions leave room for this many rows beside them.
MAX_WITH_FLAG = 98


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
        # With the verified progress, or (``afresh``) a new attempt in a new partition: also
        # when a copy got no answer, since it may still land (a read without one may not).
        afresh = migration.afresh or migration.copy_unanswered
        release(db, run, Release(kind, reason, afresh=afresh), progress=migration.progress)
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
