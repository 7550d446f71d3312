"""A partition per attempt: a stale holder's copies land where nobody looks, and cleanup
deletes them without ever touching a visible row (promises 2 and 13, issue 9 item 4)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from store import batch, keys
from store.changes import CHANGED_AT
from store.db import Database
from store.migration import check
from store.migration.acquire import try_acquire
from store.migration.claim import ClaimObserver, read_claim
from store.migration.engine import Migration, Settings, run_migration
from store.migration.errors import LostClaim
from store.migration.flag import read_flag
from store.migration.rows import item_copy
from store.migration.v1 import scan_v1_items
from tests.support.faults import is_bulk_copy
from tests.support.helpers import scan_all
from tests.support.migration import (
    after_backoff,
    assert_exact_copy,
    for_backend,
    item_puts,
    migrate,
)
from tests.support.multiprocess import edit_items, rows_of


class Paused(Exception):
    """Stands for a holder that stopped between two pages (SIGSTOP, a long GC pause)."""


def _visible(db: Database) -> dict[str, Any]:
    """Everything people can reach: every workspace partition that has a WORKSPACE row,
    and every membership the ByUser index lists."""
    rows = scan_all(db)
    workspaces = {r["PK"]["S"] for r in rows if r["SK"]["S"] == keys.WORKSPACE_SK}
    return {
        "rows": sorted(
            (r["PK"]["S"], r["SK"]["S"], repr(sorted(r.items())))
            for r in rows
            if r["PK"]["S"] in workspaces
        ),
        "memberships": sorted(
            (r[keys.GSI1PK]["S"], r[keys.GSI1SK]["S"]) for r in rows if keys.GSI1PK in r
        ),
    }


def _paused_holder_and_a_takeover(database: Database) -> tuple[Migration, Any]:
    """Holder A copies a page and pauses; its claim lapses; B takes over and writes the flag.
    Returns A (still holding its run, its heartbeat long stopped) and the flag."""
    settings = for_backend(database, Settings(lease=5, budget=3, writers=2, segments=2))
    run = try_acquire(database, "a", ClaimObserver(), lease=5, segments=2)
    assert run is not None

    def pause(_segment: int) -> None:
        raise Paused

    stale = Migration(database, run, settings, on_page=pause)
    with pytest.raises(Paused):
        stale.execute()
    observer = ClaimObserver()
    assert try_acquire(database, "b", observer, lease=5, segments=2, monotonic=lambda: 0.0) is None
    taken = try_acquire(database, "b", observer, lease=5, segments=2, monotonic=lambda: 5.1)
    assert taken is not None
    flag = run_migration(database, taken, settings)
    assert flag is not None and flag.workspace_id != run.claim.workspace_id
    return stale, flag


def _late_copies(stale: Migration) -> None:
    """What A's copies in flight do when they finally land: every v1 item, as A read it,
    put with BatchWriteItem into A's partition (no fence can stop them)."""
    copies = [
        item_copy(stale.workspace_id, row) for page, _ in scan_v1_items(stale.db) for row in page
    ]
    deadline = time.monotonic() + 60
    for chunk in batch.chunk_requests({"PutRequest": {"Item": c}} for c in copies):
        batch.write_chunk(stale.db, chunk, deadline=deadline)


def test_a_stale_holders_late_writes_after_the_flag_change_nothing_visible(database, seed):
    """R10 in one process: A's copies that land after the flag, and after people edited the
    same items, go to A's abandoned partition; its fenced writes (the rows that would make
    that partition a workspace, and a second flag) are refused by DynamoDB."""
    seed(items=60, settings=3, members=3)
    stale, flag = _paused_holder_and_a_takeover(database)
    copies = rows_of(database, flag.workspace_id)
    item_ids = sorted(sk.removeprefix("ITEM#") for sk in copies if sk.startswith("ITEM#"))
    edited = edit_items(database, flag.workspace_id, item_ids[:10])
    before = _visible(database)

    _late_copies(stale)
    # A resumes unaware it was paused: its own checks pass, so only DynamoDB can stop it.
    stale.aborted.clear()
    stale.lost.clear()
    stale.confirmed_at = stale.monotonic()
    members, settings = stale._read_team()[:2]
    team = stale._team_rows(members, settings)
    with pytest.raises(LostClaim):
        stale._write_team_first(team, {})
    with pytest.raises(LostClaim):
        stale._write_flag({}, team)

    assert _visible(database) == before, "a late write changed what people see"
    rows = rows_of(database, flag.workspace_id)
    assert {i: rows[f"ITEM#{i}"]["title"]["S"] for i in edited} == edited
    assert read_flag(database) == flag
    assert read_claim(database).abandoned == [stale.workspace_id]
    partition = rows_of(database, stale.workspace_id)
    assert len([sk for sk in partition if sk.startswith("ITEM#")]) == 60, "the late copies"
    assert not [sk for sk in partition if not sk.startswith(("ITEM#", "SET#"))]


def test_cleanup_deletes_abandoned_partitions_and_never_a_visible_row(database, seed, runner):
    seed(items=40, settings=3, members=3)
    stale, flag = _paused_holder_and_a_takeover(database)
    _late_copies(stale)
    visible = _visible(database)
    # An item people added in v2 after the flag (marked, as every v2 write is): a row that
    # must survive any cleanup, the late-write sync's included.
    added = {**item_copy(flag.workspace_id, next(scan_v1_items(database))[0][0])}
    added[keys.SK] = {"S": keys.ITEM_PREFIX + "added-in-v2"}
    added[CHANGED_AT] = {"S": "2026-11-30T12:00:00Z"}
    database.client.put_item(TableName=database.table, Item=added)

    status = runner.invoke(args=["migration", "status"])
    assert f"abandoned attempt: {stale.workspace_id} holds 43 copies" in status.output, (
        status.output
    )
    dry = runner.invoke(args=["migration", "cleanup", "--dry-run"])
    assert f"delete abandoned attempt {stale.workspace_id}" in dry.output
    assert rows_of(database, stale.workspace_id), "a dry run deletes nothing"

    cleanup = runner.invoke(args=["migration", "cleanup"])

    assert f"deleted abandoned attempt {stale.workspace_id}" in cleanup.output, cleanup.output
    assert rows_of(database, stale.workspace_id) == {}
    after = _visible(database)
    assert set(visible["rows"]) <= set(after["rows"]), "cleanup deleted a visible row"
    assert visible["memberships"] == after["memberships"]
    assert database.get(keys.key(added[keys.PK]["S"], added[keys.SK]["S"]), consistent=True)
    assert check.abandoned_partitions(database) == []
    # Never the workspace people use, whatever the claim says.
    with pytest.raises(check.VisiblePartition):
        check.delete_abandoned(database, flag.workspace_id)


def test_a_listed_partition_holding_a_workspace_row_is_never_deleted(database, seed):
    seed(items=10, settings=1, members=1)
    stale, flag = _paused_holder_and_a_takeover(database)
    _late_copies(stale)
    forged = {**keys.workspace(stale.workspace_id), "name": {"S": "reachable"}}
    database.client.put_item(TableName=database.table, Item=forged)
    rows = rows_of(database, stale.workspace_id)

    with pytest.raises(check.VisiblePartition):
        check.delete_abandoned(database, stale.workspace_id)

    assert rows_of(database, stale.workspace_id) == rows
    assert read_flag(database) == flag


def test_a_copy_that_got_no_answer_abandons_its_attempt_and_the_next_run_copies_afresh(
    database, seed, ddb_client, raw_client, monkeypatch
):
    """A copy whose answer never came (after botocore's own retries) may still land later, so
    the run that let go of the claim cannot leave its partition to the next run: that run
    copies into a new one. (A throttled copy was answered: it keeps the attempt, see
    test_engine.py's throttling tests.)"""
    seed(items=30, settings=2, members=2)
    monkeypatch.setattr(batch, "_sleep", lambda _s: None)

    def no_answer(**params: Any) -> dict[str, Any]:
        if is_bulk_copy(params) and item_puts(params):
            raise ReadTimeoutError(endpoint_url="dynamodb")
        return raw_client.batch_write_item(**params)

    monkeypatch.setattr(ddb_client, "batch_write_item", no_answer)
    run = try_acquire(database, "a", ClaimObserver(), lease=30, segments=2)
    first = run.claim.workspace_id
    settings = for_backend(database, Settings(lease=30, budget=1, writers=2, segments=2))
    assert run_migration(database, run, settings) is None
    monkeypatch.undo()

    claim = read_claim(database)
    assert claim.state == "waiting" and "ReadTimeout" in claim.failed_reason
    assert claim.workspace_id != first and claim.abandoned == [first]
    assert (claim.items_copied, claim.cursors) == (0, {})
    flag = migrate(database, when=after_backoff)
    assert flag is not None and flag.workspace_id == claim.workspace_id
    assert_exact_copy(database, flag)


def test_a_read_that_got_no_answer_keeps_the_attempt(database, seed, ddb_client, monkeypatch):
    """A read in flight writes nothing: the failed run's partition and cursors are resumed."""
    seed(items=30, settings=2, members=2)
    original = ddb_client.scan

    def count_times_out(**params: Any) -> dict[str, Any]:
        if params.get("Select") == "COUNT":
            raise ReadTimeoutError(endpoint_url="dynamodb")
        return original(**params)

    monkeypatch.setattr(ddb_client, "scan", count_times_out)
    run = try_acquire(database, "a", ClaimObserver(), lease=30, segments=2)
    settings = for_backend(database, Settings(lease=30, budget=1, writers=2, segments=2))
    assert run_migration(database, run, settings) is None
    monkeypatch.undo()

    claim = read_claim(database)
    assert claim.state == "waiting" and "ReadTimeout" in claim.failed_reason
    assert claim.workspace_id == run.claim.workspace_id and claim.abandoned == []
    assert claim.items_copied == 30
    flag = migrate(database, when=after_backoff)
    assert flag is not None and flag.workspace_id == run.claim.workspace_id
    assert_exact_copy(database, flag)
