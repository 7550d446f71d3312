"""Taking the claim: one holder at a time across threads, a lapsed claim taken over into a
new attempt's partition (still one workspace), a live or paused holder fenced (promises 1, 2;
R1, R9-R12)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from store.migration.acquire import try_acquire
from store.migration.claim import ClaimObserver, read_claim
from store.migration.engine import Migration, Settings, run_migration
from store.migration.errors import LostClaim, MigrationError
from store.migration.flag import read_flag
from tests.support.helpers import rows_with, scan_all
from tests.support.migration import (
    FAST,
    assert_exact_copy,
    for_backend,
)


def test_a_crashed_holder_is_taken_over_after_a_lease_into_a_new_partition_one_workspace(
    database, seed
):
    """Promise 2: a lapsed claim is taken over and the copy finishes into one workspace. The
    holder might only be paused with a copy in flight, so the takeover starts a new attempt
    in a fresh partition (the copy restarts there); the crashed attempt's partition is
    listed as abandoned and has no workspace row and no members, so nobody ever sees it."""
    seed(items=90)
    clock = {"now": 1000.0}
    run = try_acquire(database, "first", ClaimObserver(), lease=5, segments=2)
    settings = for_backend(database, Settings(lease=5, budget=3, writers=2, segments=2))

    class Crash(Exception):
        pass

    pages = {"n": 0}

    def crash_after_two_pages(_segment: int) -> None:
        pages["n"] += 1
        if pages["n"] == 2:
            crashed.heartbeat()  # the last progress it published before dying
            raise Crash

    crashed = Migration(database, run, settings, on_page=crash_after_two_pages)
    with pytest.raises(Crash):
        crashed.execute()
    assert read_flag(database) is None

    contender = ClaimObserver()
    tick = lambda: clock["now"]  # noqa: E731
    assert try_acquire(database, "b", contender, lease=5, segments=2, monotonic=tick) is None
    clock["now"] += 4.9
    assert (
        try_acquire(database, "b", contender, lease=5, segments=2, monotonic=tick) is None
    )  # still within the lease
    clock["now"] += 0.2
    resumed = try_acquire(database, "b", contender, lease=5, segments=2, monotonic=tick)

    assert resumed is not None
    crashed_partition = run.claim.workspace_id
    assert resumed.claim.workspace_id != crashed_partition
    assert resumed.claim.abandoned == [crashed_partition]
    assert (resumed.claim.items_copied, resumed.claim.cursors) == (0, {})  # copied afresh
    flag = run_migration(database, resumed, settings)
    assert flag is not None and flag.workspace_id == resumed.claim.workspace_id
    assert_exact_copy(database, flag)
    assert read_claim(database).abandoned == [crashed_partition]
    left = rows_with(database, f"WORKSPACE#{crashed_partition}", "")
    assert left and all(r["SK"]["S"].startswith(("ITEM#", "SET#")) for r in left), (
        "the abandoned partition holds only the crashed attempt's items and settings"
    )
    assert len([r for r in scan_all(database) if r["SK"]["S"] == "WORKSPACE"]) == 1


def test_a_contender_with_a_skewed_wall_clock_does_not_take_over_a_live_claim(database, seed):
    seed(items=5)
    try_acquire(database, "holder", ClaimObserver(), lease=5, segments=1, wall=lambda: 0.0)
    observer = ClaimObserver()
    hour_ahead = lambda: time.time() + 3600  # noqa: E731
    steady = {"now": 50.0}

    first = try_acquire(
        database,
        "c",
        observer,
        lease=5,
        segments=1,
        wall=hour_ahead,
        monotonic=lambda: steady["now"],
    )

    assert first is None  # a wall clock an hour ahead changes nothing
    steady["now"] += 5.0
    later = try_acquire(
        database,
        "c",
        observer,
        lease=5,
        segments=1,
        wall=hour_ahead,
        monotonic=lambda: steady["now"],
    )
    assert later is not None  # the holder never beat: lapsed on the contender's own clock


def test_a_live_holder_keeps_its_claim_because_its_heartbeat_moves_the_version(database, seed):
    seed(items=5)
    run = try_acquire(database, "holder", ClaimObserver(), lease=2, segments=1)
    holder = Migration(database, run, Settings(lease=2, segments=1))
    observer = ClaimObserver()
    clock = {"now": 0.0}

    for _ in range(10):
        assert (
            try_acquire(
                database, "c", observer, lease=2, segments=1, monotonic=lambda: clock["now"]
            )
            is None
        )
        assert holder.heartbeat()
        clock["now"] += 1.5  # less than a lease between two sightings of a new version


def test_a_paused_holder_is_fenced_off_and_cannot_overwrite_edits_or_write_a_second_flag(
    database, seed
):
    seed(items=60)
    settings = Settings(lease=1.0, budget=3, writers=1, segments=1)
    run_a = try_acquire(database, "a", ClaimObserver(), lease=1.0, segments=1)
    paused = threading.Event()
    resume = threading.Event()

    def pause_at_first_page(_segment: int) -> None:
        if not paused.is_set():
            paused.set()
            resume.wait(30)

    # A's own clock stands still until the test moves it: on a loaded machine the real one
    # could pass half a lease before A even reaches its first page.
    a_clock = {"now": 0.0}
    holder = Migration(
        database,
        run_a,
        settings,
        on_page=pause_at_first_page,
        monotonic=lambda: a_clock["now"],
    )
    # A whole-process pause stops the heartbeat too.
    holder.heartbeat = lambda: True  # type: ignore[method-assign]
    outcome: dict[str, Any] = {}

    def run_holder() -> None:
        try:
            outcome["flag"] = holder.execute()
        except MigrationError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run_holder)
    thread.start()
    assert paused.wait(30)

    clock = {"now": 0.0}
    observer = ClaimObserver()
    assert (
        try_acquire(database, "b", observer, lease=1.0, segments=1, monotonic=lambda: clock["now"])
        is None
    )
    clock["now"] = 1.5
    run_b = try_acquire(
        database, "b", observer, lease=1.0, segments=1, monotonic=lambda: clock["now"]
    )
    assert run_b is not None
    flag_b = run_migration(database, run_b, settings)
    assert flag_b is not None
    # A person edits a migrated item after B finished.
    item_sk = rows_with(database, f"WORKSPACE#{flag_b.workspace_id}", "ITEM#")[0]["SK"]
    database.client.update_item(
        TableName=database.table,
        Key={"PK": {"S": f"WORKSPACE#{flag_b.workspace_id}"}, "SK": item_sk},
        UpdateExpression="SET title = :t",
        ExpressionAttributeValues={":t": {"S": "edited after the migration"}},
    )
    a_clock["now"] = 0.6  # longer than half A's lease since its last heartbeat
    resume.set()
    thread.join(30)

    assert isinstance(outcome.get("error"), LostClaim)
    edited = database.get({"PK": {"S": f"WORKSPACE#{flag_b.workspace_id}"}, "SK": item_sk})
    assert edited["title"] == {"S": "edited after the migration"}
    assert read_flag(database).run_id == flag_b.run_id
    assert len(rows_with(database, "MIGRATION", "V2_COMPLETE")) == 1


def test_simultaneous_runs_in_many_threads_make_one_workspace_and_one_flag(database, seed, backend):
    if backend != "local":
        pytest.skip("moto is not safe under concurrency (moto FAQ); runs on DynamoDB Local")
    seed(items=100, settings=5, members=4)
    start = threading.Barrier(16)
    flags: list[Any] = []

    def contender(n: int) -> None:
        start.wait()
        run = try_acquire(database, f"user{n}", ClaimObserver(), lease=30, segments=4)
        if run is not None:
            flags.append(run_migration(database, run, FAST))

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert len(flags) == 1 and flags[0] is not None
    assert len([r for r in scan_all(database) if r["SK"]["S"] == "WORKSPACE"]) == 1
    assert len(rows_with(database, "MIGRATION", "V2_COMPLETE")) == 1
    assert_exact_copy(database, flags[0])
