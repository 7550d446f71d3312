"""Promise 10: no row blocks the team. Rows v2 cannot store as they are are kept back, named
with a reason, never altered or dropped; everything else is copied exactly."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from store import keys
from store.db import Database
from store.migration import check, engine
from store.migration.claim import STATE_WAITING, read_claim
from store.migration.kept import read_kept
from store.migration.rows import same_data
from store.migration.v1 import count_v1
from tests.support import kept_back
from tests.support.helpers import rows_with, scan_all
from tests.support.migration import FAST, after_backoff, migrate


@pytest.fixture
def table_name(ddb_client: Any) -> Iterator[str]:
    """A table as v1 made it; each test writes its rows, then runs db init."""
    yield from kept_back.v1_table(ddb_client)


def v1_rows(database: Database) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (r["PK"]["S"], r["SK"]["S"]): r
        for r in scan_all(database)
        if r["PK"]["S"] in ("SETTINGS", "MEMBERS")
        or (r["PK"]["S"].startswith("ITEM#") and r["SK"]["S"] == "ITEM")
    }


def prepare(database: Database, seed: Any) -> None:
    seed(items=20, settings=3, members=3)
    kept_back.write(database, [row for _, row in kept_back.UNSTORABLE])
    kept_back.write(database, [kept_back.WITH_WORKSPACE_NAME])
    kept_back.db_init(database)


def test_each_unstorable_row_is_kept_back_with_its_reason_and_the_rest_copied_exactly(
    database, seed
):
    prepare(database, seed)
    before = v1_rows(database)

    flag = migrate(database)

    assert flag is not None, read_claim(database)
    assert (flag.items, flag.settings, flag.members) == (21, 3, 3)
    assert flag.kept_back == 5
    assert flag.kept_by_kind == {"items": 3, "settings": 1, "members": 1}
    # Counts add up: what was copied and what was kept back is all of v1.
    v1 = count_v1(database)
    for name, copied in (("items", 21), ("settings", 3), ("members", 3)):
        assert copied + flag.kept_by_kind[name] == v1[name]
    # Named with key and reason.
    kept, total = read_kept(database)
    assert total == 5
    for words, row in kept_back.UNSTORABLE:
        # Keys are shown cut to 1024 characters; the whole key's length is kept beside.
        shown = (row["PK"]["S"][:1024], row["SK"]["S"][:1024])
        matches = [k for k in kept if (k.v1_pk, k.v1_sk) == shown]
        assert len(matches) == 1, row["PK"]["S"][:30]
        assert words in matches[0].reason, matches[0].reason
    # Never altered, never dropped: v1 is exactly as it was.
    assert v1_rows(database) == before
    # Not copied, and nothing else missing or different.
    verdicts = Counter(row.verdict for row in check.compare(database, flag.workspace_id, None))
    assert verdicts == {check.IDENTICAL: 27, check.KEPT_BACK: 5}
    v2_keys = {r["SK"]["S"] for r in rows_with(database, f"WORKSPACE#{flag.workspace_id}")}
    assert "ITEM#number-created" not in v2_keys and "MEMBER#u-gsi" not in v2_keys


def test_an_item_that_merely_carries_workspace_name_is_copied_exactly(database, seed):
    seed(items=3, settings=1, members=1)
    kept_back.write(database, [kept_back.WITH_WORKSPACE_NAME])
    kept_back.db_init(database)

    flag = migrate(database)

    assert flag is not None and flag.kept_back == 0 and flag.items == 4
    copy = database.get(keys.item(flag.workspace_id, "named"), consistent=True)
    assert copy["workspaceName"] == {"S": "kept as it is"}
    assert same_data(kept_back.WITH_WORKSPACE_NAME, copy)


def test_an_item_whose_expires_at_is_a_number_is_kept_back_from_v2s_ttl(database, seed):
    """v2 expires rows by a number in expiresAt; a copy of a v1 row carrying one would be
    deleted by DynamoDB's TTL. A text expiresAt means nothing to TTL and is copied."""
    seed(items=3, settings=1, members=1)
    numeric = kept_back.item("ttl-number", expiresAt={"N": "1000000000"})
    textual = kept_back.item("ttl-text", expiresAt={"S": "2001-09-09"})
    kept_back.write(database, [numeric, textual])
    kept_back.db_init(database)

    flag = migrate(database)

    assert flag is not None and (flag.items, flag.kept_back) == (4, 1)
    (record,), _ = read_kept(database)
    assert record.v1_pk == "ITEM#ttl-number" and "expiresAt" in record.reason
    assert database.get(keys.item(flag.workspace_id, "ttl-number"), consistent=True) is None
    assert same_data(
        textual, database.get(keys.item(flag.workspace_id, "ttl-text"), consistent=True)
    )


def test_cleanup_keeps_kept_back_rows_and_verify_reports_them(database, seed, runner):
    prepare(database, seed)
    flag = migrate(database)
    assert flag is not None

    verify = runner.invoke(args=["migration", "verify"])
    cleanup = runner.invoke(args=["migration", "cleanup"])

    assert verify.exit_code == 1, verify.output
    assert (
        "kept back: item ITEM#number-created / ITEM (createdAt is a number; v2 needs text)"
        in verify.output
    )
    assert "5 kept back" in verify.output and "missing" not in verify.output
    assert cleanup.exit_code == 1, cleanup.output
    assert "5 kept: kept back" in cleanup.output and "27 deleted" in cleanup.output
    left = v1_rows(database)
    assert set(left) == {(r["PK"]["S"], r["SK"]["S"]) for _, r in kept_back.UNSTORABLE}


def test_a_row_dynamodb_refuses_that_the_check_missed_is_kept_back_with_its_message(
    database, seed, monkeypatch
):
    seed(items=12, settings=1, members=1)
    kept_back.write(database, [kept_back.item(kept_back.LONG_ITEM_ID)])
    kept_back.db_init(database)
    # As if storable_problem did not know this limit: DynamoDB's refusal is narrowed down.
    monkeypatch.setattr(engine, "storable_problem", lambda *_: None)

    flag = migrate(database)

    assert flag is not None, read_claim(database)
    assert (flag.items, flag.kept_back) == (12, 1)
    (record,), _ = read_kept(database)
    assert record.v1_pk == ("ITEM#" + kept_back.LONG_ITEM_ID)[:1024] and record.shortened
    assert record.key_bytes == len("ITEM#" + kept_back.LONG_ITEM_ID) + len("ITEM")
    assert record.reason.startswith("DynamoDB refused the copy: ")


def test_v1_rows_added_during_the_copy_reset_the_counts_and_the_next_run_copies_again(
    database, seed
):
    seed(items=15, settings=1, members=1)
    kept_back.write(database, [kept_back.item("num", createdAt={"N": "5"})])
    kept_back.db_init(database)
    scanned: set[int] = set()

    def v1_server_writes(segment: int) -> None:
        # A v1 server still running adds an item once every scan segment has passed.
        scanned.add(segment)
        if len(scanned) == FAST.segments:
            database.client.put_item(TableName=database.table, Item=kept_back.item("late"))

    first = migrate(database, on_page=v1_server_writes)

    assert first is None
    claim = read_claim(database)
    # A transient failure: people read "retrying", the operator the reason.
    assert claim.state == STATE_WAITING and "v1 rows changed" in claim.failed_reason
    assert (claim.items_copied, claim.cursors, claim.kept_by_kind) == (0, {}, {})
    assert read_kept(database)[1] == 0, "the records go with the reset; the next pass re-records"
    flag = migrate(database, when=after_backoff)
    assert flag is not None and (flag.items, flag.kept_back) == (16, 1)
    assert read_kept(database)[1] == 1


@pytest.mark.local_only("DynamoDB Local counts item sizes as DynamoDB does; moto is stricter")
def test_an_item_that_fits_in_v1_but_not_with_its_v2_keys_is_kept_back_at_the_exact_edge(
    database, seed
):
    seed(items=2, settings=1, members=1)
    fits = kept_back.sized_item("fits", 400 * 1024)
    over = kept_back.sized_item("over", 400 * 1024 + 1)
    kept_back.write(database, [fits, over])  # both fit in v1, with its shorter keys
    kept_back.db_init(database)

    flag = migrate(database)

    assert flag is not None and (flag.items, flag.kept_back) == (3, 1)
    (record,), _ = read_kept(database)
    assert record.v1_pk == "ITEM#over" and "409601 bytes" in record.reason
    copy = database.get(keys.item(flag.workspace_id, "fits"), consistent=True)
    assert same_data(fits, copy)
