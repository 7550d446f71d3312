"""The verification pass before the flag (PRODUCT.md promise 3): counts, not read-backs.

Every copy goes to the attempt's own partition, which nobody else writes while the attempt
holds the claim, so one pass at the end proves the copy: copied + kept back equals an
independent count of the v1 rows, per kind, and the partition holds exactly the copies
written (strongly consistent COUNT Queries, side by side with the v1 count). A copy that
DynamoDB acknowledged but did not keep is found by comparing the partition's keys with v1's
and written again; v1 rows that changed under the copy start it over in a new partition.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from store import keys
from store.db import Database, RawItem

from .bulk import partition_counts, partition_sort_keys
from .claim import Progress, Run
from .errors import CopiesMissing, V1Changed
from .fenced import RowKey
from .kept import forget_all, kept_by_id, record_id
from .rows import ITEM, SETTING, item_copy, setting_copy, storable_problem
from .stream import changes_reach_v2_later
from .v1 import count_v1, scan_v1_items, v1_partition

log = logging.getLogger(__name__)

# Measured on DynamoDB Local (the verification alone, median of 9): at 100 items one segment
# took 31 ms against 44 ms for four, at 1,000 items 67 against 72 ms, at 10,000 items 1.7 s
# against 1.0 s.
COUNT_ITEMS_PER_SEGMENT = 2500


class Verification:
    """The checks of ``engine.Migration`` before its flag; it provides the attributes below
    and ``_put_copies`` (``bulk.BulkCopies``)."""

    db: Database
    run: Run
    progress: Progress
    workspace_id: str
    afresh: bool

    def _put_copies(self, rows: list[RawItem]) -> dict[RowKey, str]:
        raise NotImplementedError

    def _check_counts(self) -> dict[str, int]:
        """Verify before the flag (promise 3): copied + kept back must equal an independent
        count of the v1 rows, per kind, and the partition must hold every copy (one
        verification pass, side by side with the v1 count); return the kept-back counts.
        When v1 differs, it changed during the copy: the next run copies it again, into a
        new partition (``Release.afresh``)."""
        with ThreadPoolExecutor(max_workers=2) as pool:
            v1_counts = pool.submit(count_v1, self.db, self._count_segments())
            in_partition = pool.submit(partition_counts, self.db, self.workspace_id)
            v1, v2 = v1_counts.result(), in_partition.result()
        with self.progress.lock:
            copied = {
                "items": self.progress.items,
                "settings": self.progress.settings,
                "members": self.progress.members,
            }
            kept = {name: self.progress.kept.get(name, 0) for name in copied}
        differ = {name for name in copied if copied[name] + kept[name] != v1[name]}
        if any(v2[name] > copied[name] for name in v2):
            # Copies of rows that are gone from v1: only a fresh partition is exact again.
            differ |= {name for name in v2 if v2[name] > copied[name]}
        if differ and changes_reach_v2_later(self.db, self.run.claim.started_at):
            # A v1 server still writing (a rolling deploy): the stream holds every change
            # since the copy began, and the late-write sync applies them after the flag.
            log.info("migration: v1 changed during the copy; the late-write sync applies it")
        elif differ:
            self._start_again(differ, v1, copied, kept)
        if any(v2[name] < copied[name] for name in v2):
            self._rewrite_missing()
        return kept

    def _count_segments(self) -> int:
        """Scan segments for the v1 count: one per ``COUNT_ITEMS_PER_SEGMENT`` items the copy
        saw, up to the copy's own. A COUNT page covers up to 1 MB, so below that a segment
        reads the table in a page or two and more segments only add calls."""
        with self.progress.lock:
            seen = self.progress.items + self.progress.kept.get("items", 0)
        wanted = -(-seen // COUNT_ITEMS_PER_SEGMENT)
        return max(1, min(self.run.claim.total_segments, wanted))

    def _start_again(
        self, differ: set[str], v1: dict[str, int], copied: dict[str, int], kept: dict[str, int]
    ) -> None:
        log.warning(
            "migration run %s: v1 %s changed during the copy (v1 %s, copied %s, kept back %s)",
            self.run.run_id,
            ", ".join(sorted(differ)),
            v1,
            copied,
            kept,
        )
        self.afresh = True
        forget_all(self.db)
        raise V1Changed("v1 rows changed during the copy; copying again")

    def _rewrite_missing(self) -> None:
        """Fewer copies in the partition than were written (a write DynamoDB acknowledged
        but did not keep): compare the partition's keys with v1's, write the missing copies
        again, and count once more."""
        present = set(partition_sort_keys(self.db, self.workspace_id))
        kept = set(kept_by_id(self.db))
        missing: list[RawItem] = []
        pages = [v1_partition(self.db, keys.V1_SETTINGS_PK)]
        pages += (rows for rows, _ in scan_v1_items(self.db))
        for rows in pages:
            for row in rows:
                kind = SETTING if row[keys.PK]["S"] == keys.V1_SETTINGS_PK else ITEM
                copy = (setting_copy if kind == SETTING else item_copy)(self.workspace_id, row)
                if copy[keys.SK]["S"] in present or record_id(kind, row) in kept:
                    continue
                if storable_problem(kind, row, copy) is None:
                    missing.append(copy)
        log.warning(
            "migration run %s: writing %d missing copies again", self.run.run_id, len(missing)
        )
        for _ in range(3):
            if not missing or self._put_copies(missing):
                break
            counts = partition_counts(self.db, self.workspace_id)
            with self.progress.lock:
                if (
                    counts["items"] >= self.progress.items
                    and counts["settings"] >= self.progress.settings
                ):
                    return
            present = set(partition_sort_keys(self.db, self.workspace_id))
            missing = [c for c in missing if c[keys.SK]["S"] not in present]
        first = missing[0][keys.SK]["S"] if missing else "?"
        raise CopiesMissing(
            f"{len(missing)} copies still missing from the partition after writing them "
            f"again 3 times (first: {first})"
        )
