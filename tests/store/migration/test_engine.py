"""The migration engine against a real table (moto, and DynamoDB Local with --backend=local)."""

from __future__ import annotations

import random
import time
from typing import Any

from botocore.exceptions import ClientError

from store import batch, keys
from store.migration import engine
from store.migration.acquire import try_acquire
from store.migration.claim import STATE_WAITING, ClaimObserver, read_claim
from store.migration.engine import Settings
from store.migration.flag import read_flag
from tests.support.auth import dynamodb_calls
from tests.support.faults import is_bulk_copy
from tests.support.helpers import hooked, rows_with, scan_all, wait_for
from tests.support.migration import (
    FAST,
    after_backoff,
    assert_exact_copy,
    for_backend,
    item_puts,
    migrate,
    throttled,
)


def test_migration_copies_every_row_and_writes_a_flag_with_the_v1_counts(database, seed):
    seed(items=60, settings=5, members=4)

    flag = migrate(database, user_id="starter")

    assert flag is not None
    assert_exact_copy(database, flag)
    stored = read_flag(database)
    assert stored == flag
    assert stored.migrated_by == "starter" and stored.migrated_at and stored.duration_ms >= 0
    workspace = database.get(keys.workspace(flag.workspace_id))
    assert workspace["origin"] == {"S": "v1-migration"}
    assert workspace["name"] == {"S": "Acme Team"}  # the v1 teamName setting
    assert workspace["ownerCount"] == {"N": "1"}


def test_v1_rows_are_left_untouched(database, seed):
    seed(items=30)
    before = [r for r in scan_all(database)]

    migrate(database)

    after = {(r["PK"]["S"], r["SK"]["S"]): r for r in scan_all(database)}
    for row in before:
        assert after[(row["PK"]["S"], row["SK"]["S"])] == row


def test_a_second_run_finds_the_claim_complete_and_does_nothing(database, seed):
    seed(items=10)
    migrate(database)
    observer = ClaimObserver()

    again = try_acquire(database, "late", observer, lease=0.0, segments=4)

    assert again is None
    assert len(rows_with(database, "MIGRATION", "V2_COMPLETE")) == 1
    assert len([r for r in scan_all(database) if r["SK"]["S"] == "WORKSPACE"]) == 1


def test_the_scan_follows_every_page_even_with_a_tiny_page_limit(database, seed, ddb_client):
    seed(items=0, settings=1, members=1)
    big_notes = "x" * 10_000
    rows = [
        {
            "PK": {"S": f"ITEM#big{i:04d}"},
            "SK": {"S": "ITEM"},
            "title": {"S": f"t{i}"},
            "status": {"S": "open"},
            "createdAt": {"S": "2024-01-01T00:00:00.000000Z"},
            "notes": {"S": big_notes},
        }
        for i in range(300)
    ]
    # Rows that look a little like v1 items but are not.
    rows += [{"PK": {"S": f"ITEMS#{i}"}, "SK": {"S": "ITEM"}} for i in range(5)]
    rows += [{"PK": {"S": f"ITEM#{i}"}, "SK": {"S": "OTHER"}} for i in range(5)]
    batch_rows = [{"PutRequest": {"Item": r}} for r in rows]
    deadline = time.monotonic() + 60
    for chunk in batch.chunk_requests(batch_rows):
        batch.write_chunk(database, chunk, deadline=deadline)
    scans: list[int] = []

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        if "FilterExpression" in params and "Select" not in params:
            params["Limit"] = 7
            scans.append(1)

    with hooked(ddb_client, "provide-client-params.dynamodb.Scan", small_pages):
        flag = migrate(database)

    assert flag is not None and flag.items == 300
    assert len(scans) > 300 // 7  # the limit really applied
    assert_exact_copy(database, flag)


def test_throttled_and_unprocessed_copies_are_retried_with_growing_jittered_backoff(
    database, seed, ddb_client, raw_client, monkeypatch
):
    seed(items=120)
    sleeps: list[float] = []
    monkeypatch.setattr(batch, "_sleep", sleeps.append)
    rng = random.Random(3)
    refusals = {"left": 12}

    def flaky(**params: Any) -> dict[str, Any]:
        if is_bulk_copy(params) and refusals["left"] > 0:
            refusals["left"] -= 1
            if rng.random() < 0.5:
                raise throttled("BatchWriteItem")
            # DynamoDB under load: nothing written, everything comes back unprocessed.
            return {"UnprocessedItems": params["RequestItems"]}
        return raw_client.batch_write_item(**params)

    monkeypatch.setattr(ddb_client, "batch_write_item", flaky)
    flag = migrate(database)

    assert refusals["left"] == 0
    assert flag is not None
    assert_exact_copy(database, flag)
    assert len(sleeps) >= 12, "refused copies were re-sent without any pause"
    assert max(sleeps) <= batch.Backoff().cap


def test_backoff_ceiling_doubles_up_to_the_cap():
    delays: list[float] = []
    backoff = batch.Backoff(base=0.05, cap=0.4, sleep=delays.append, rng=random.Random(1))
    far = time.monotonic() + 100
    for _ in range(8):
        backoff.pause(far)
    ceilings = [min(0.4, 0.05 * 2 ** (i + 1)) for i in range(8)]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays[4:]) > 0.1  # later pauses can be longer than early ones
    assert len(set(delays)) == len(delays)  # jittered, not lock-step


def test_permanent_throttling_stops_within_budget_without_a_flag_and_a_later_run_finishes(
    database, seed, ddb_client, raw_client, monkeypatch
):
    seed(items=80)
    monkeypatch.setattr(batch, "_sleep", lambda _s: None)
    copies = {"n": 0}

    def throttle_after_two(**params: Any) -> dict[str, Any]:
        if is_bulk_copy(params):
            copies["n"] += 1
            if copies["n"] > 2:
                raise throttled("BatchWriteItem")
        return raw_client.batch_write_item(**params)

    settings = Settings(lease=30, budget=0.3, writers=2, segments=2)
    monkeypatch.setattr(ddb_client, "batch_write_item", throttle_after_two)
    assert migrate(database, settings=settings) is None
    monkeypatch.undo()  # the fault is gone

    assert read_flag(database) is None
    claim = read_claim(database)
    assert claim.state == STATE_WAITING
    assert "retrying" in claim.last_error
    first_workspace = claim.workspace_id

    assert not claim.due()  # backed off across runs: the next run waits its turn
    flag = migrate(database, settings=settings, when=after_backoff)

    assert flag is not None and flag.workspace_id == first_workspace
    assert_exact_copy(database, flag)
    assert len([r for r in scan_all(database) if r["SK"]["S"] == "WORKSPACE"]) == 1


def test_throttling_errors_are_retried_until_the_copy_completes(
    database, seed, ddb_client, raw_client, monkeypatch
):
    seed(items=50)
    monkeypatch.setattr(batch, "_sleep", lambda _s: None)
    failures = {"left": 4}

    def throttled_at_first(**params: Any) -> dict[str, Any]:
        if is_bulk_copy(params) and failures["left"] > 0:
            failures["left"] -= 1
            raise throttled("BatchWriteItem")
        return raw_client.batch_write_item(**params)

    monkeypatch.setattr(ddb_client, "batch_write_item", throttled_at_first)
    flag = migrate(database)

    assert failures["left"] == 0
    assert flag is not None
    assert_exact_copy(database, flag)


def _without(params: dict[str, Any], sort_key: str) -> dict[str, Any]:
    requests = {
        table: [r for r in rows if r["PutRequest"]["Item"]["SK"]["S"] != sort_key]
        for table, rows in params["RequestItems"].items()
    }
    return {**params, "RequestItems": {t: rows for t, rows in requests.items() if rows}}


def _send(raw_client: Any, params: dict[str, Any]) -> None:
    if params["RequestItems"]:
        raw_client.batch_write_item(**params)


def test_a_silently_dropped_write_is_found_by_verification_and_repaired(
    database, seed, ddb_client, raw_client, monkeypatch
):
    """Promise 3: one verification pass (counts of the partition) finds a copy DynamoDB
    acknowledged but did not keep; it is written again before the flag."""
    seed(items=30)
    dropped: list[str] = []

    def drop_one(**params: Any) -> dict[str, Any]:
        items = item_puts(params)
        if is_bulk_copy(params) and items and not dropped:
            dropped.append(items[0])
            _send(raw_client, _without(params, items[0]))
            return {"UnprocessedItems": {}}  # reports success for the dropped row too
        return raw_client.batch_write_item(**params)

    monkeypatch.setattr(ddb_client, "batch_write_item", drop_one)
    flag = migrate(database)

    assert dropped
    assert flag is not None
    assert_exact_copy(database, flag)


def test_a_row_that_never_lands_means_no_flag_and_a_recorded_reason(
    database, seed, ddb_client, raw_client, monkeypatch
):
    seed(items=20)
    victim: dict[str, str] = {}

    def always_drop(**params: Any) -> dict[str, Any]:
        items = item_puts(params)
        if is_bulk_copy(params) and items and (victim.get("sk") in items or not victim):
            victim.setdefault("sk", items[0])
            _send(raw_client, _without(params, victim["sk"]))
            return {"UnprocessedItems": {}}
        return raw_client.batch_write_item(**params)

    monkeypatch.setattr(ddb_client, "batch_write_item", always_drop)
    assert migrate(database) is None
    monkeypatch.undo()

    assert read_flag(database) is None
    claim = read_claim(database)
    assert claim.state == STATE_WAITING
    assert "copies still missing" in claim.failed_reason
    assert migrate(database, when=after_backoff) is not None  # repaired once the fault is gone


def test_an_item_too_large_for_its_v2_keys_is_kept_back_naming_it(database, seed):
    seed(items=3)

    def v1_row(size: int) -> dict[str, Any]:
        return {
            "PK": {"S": "ITEM#huge"},
            "SK": {"S": "ITEM"},
            "title": {"S": "big"},
            "status": {"S": "open"},
            "createdAt": {"S": "2024-01-01T00:00:00.000000Z"},
            "notes": {"S": "n" * size},
        }

    # The largest v1 row this server accepts (servers count sizes a little differently):
    # its v2 copy, with longer keys, cannot fit.
    low, high = 390 * 1024, 400 * 1024
    while low < high:
        middle = (low + high + 1) // 2
        try:
            database.client.put_item(TableName=database.table, Item=v1_row(middle))
            low = middle
        except ClientError:
            high = middle - 1
    database.client.put_item(TableName=database.table, Item=v1_row(low))

    flag = migrate(database)

    # Promise 10: the row stays in v1, is named with a reason, and the rest is copied.
    assert flag is not None and (flag.items, flag.kept_back) == (3, 1)
    (record,) = rows_with(database, "MIGRATION", "KEPT#")
    assert record["v1PK"] == {"S": "ITEM#huge"} and record["reason"]["S"]


# --- the progress bar's total -----------------------------------------------------------


def test_a_run_done_before_anyone_could_watch_asks_for_no_item_count(database, seed, monkeypatch):
    seed(items=30)
    monkeypatch.setattr(engine, "ESTIMATE_AFTER_SECONDS", 60.0)  # however slow the machine
    with dynamodb_calls(database.client) as calls:
        flag = migrate(database)

    assert flag is not None and flag.items == 30
    assert "DescribeTable" not in [name for name, _ in calls]


def test_a_run_still_copying_after_the_threshold_estimates_its_total(database, seed, monkeypatch):
    seed(items=30)
    monkeypatch.setattr(engine, "ESTIMATE_AFTER_SECONDS", 0.0)
    settings = for_backend(database, FAST)
    run = try_acquire(database, "u-test", ClaimObserver(), lease=30.0, segments=settings.segments)
    estimated: list[int | None] = []

    def watched(_segment: int) -> None:
        # Someone watching the progress page: the total arrives while the copy goes on.
        estimated.append(wait_for(lambda: migration.progress.items_total, timeout=10.0))

    migration = engine.Migration(database, run, settings, on_page=watched)
    flag = engine.conclude(migration)

    assert flag is not None and flag.items == 30
    # DynamoDB's table-wide count, less the accounts, settings and claim rows: at least the
    # v1 items (copies already written may count too: it is a guess for a progress bar).
    assert estimated and all(total is not None and total >= 30 for total in estimated)


def test_a_slice_that_ends_before_the_copy_hands_over_an_estimate(database, seed, monkeypatch):
    seed(items=60)
    monkeypatch.setattr(engine, "ESTIMATE_AFTER_SECONDS", 60.0)  # only the slice's end asks

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        if "FilterExpression" in params and "Select" not in params:
            params["Limit"] = 5  # several pages per segment, so the slice ends first

    with hooked(database.client, "provide-client-params.dynamodb.Scan", small_pages):
        flag = migrate(database, deadline=0.0)  # over at once: one page per segment

    assert flag is None
    claim = read_claim(database)
    assert claim.state == STATE_WAITING and 0 < claim.items_copied < 60
    assert claim.items_total is not None and claim.items_total >= 60
