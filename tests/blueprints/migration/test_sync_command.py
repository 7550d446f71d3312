"""flask migration sync, and what verify and cleanup do with late v1 writes."""

from __future__ import annotations

from typing import Any

import pytest

from store import items, keys
from store.db import Database, s
from store.migration.rows import same_data
from tests.support.helpers import scan_all
from tests.support.late_writes import v1_edit, v1_item_ids
from tests.support.migration import migrate

pytestmark = pytest.mark.stream_table


def test_sync_refuses_before_the_flag(runner: Any, seed: Any, database: Database):
    seed(items=3)
    before = scan_all(database)

    result = runner.invoke(args=["migration", "sync"])

    assert result.exit_code == 2
    assert "refusing: the migration flag is not written yet" in result.output
    assert scan_all(database) == before


def test_sync_applies_late_writes_then_has_nothing_left(runner: Any, seed: Any, database: Database):
    seed(items=4, settings=1, members=1)
    flag = migrate(database)
    first, second = v1_item_ids(database)[:2]
    v1_edit(database, first, "late edit")
    database.client.delete_item(TableName=database.table, Key=keys.v1_item(second))

    result = runner.invoke(args=["migration", "sync"])

    assert result.exit_code == 0, result.output
    assert "read from: stream" in result.output
    assert "applied 2 late v1 writes" in result.output and "conflicts: none" in result.output
    copy = database.get(keys.item(flag.workspace_id, first), consistent=True)
    assert same_data(database.get(keys.v1_item(first), consistent=True), copy)
    assert database.get(keys.item(flag.workspace_id, second), consistent=True) is None

    again = runner.invoke(args=["migration", "sync"])
    assert again.exit_code == 0, again.output
    assert "applied 0 late v1 writes" in again.output

    full = runner.invoke(args=["migration", "sync", "--full"])
    assert full.exit_code == 0, full.output
    assert "read from: full comparison (asked for (--full))" in full.output
    assert "applied 0 late v1 writes" in full.output


def test_a_conflict_is_listed_by_sync_and_verify_and_v2_is_kept(
    runner: Any, seed: Any, database: Database
):
    seed(items=3, settings=1, members=1)
    flag = migrate(database)
    item_id = v1_item_ids(database)[0]
    found = items.get_item(database, flag.workspace_id, item_id)
    items.update_item(database, found, items.ItemFields(title="people's title"))
    v1_edit(database, item_id, "v1's late title")

    result = runner.invoke(args=["migration", "sync"])

    assert result.exit_code == 1, result.output
    assert "conflicts: 1 late v1 writes not applied" in result.output
    assert f"item ITEM#{item_id} / ITEM: v1 edit at " in result.output
    assert "the row was changed in v2" in result.output
    copy = database.get(keys.item(flag.workspace_id, item_id), consistent=True)
    assert copy["title"] == s("people's title")

    verify = runner.invoke(args=["migration", "verify"])
    assert verify.exit_code == 1
    assert f"changed in v2: item ITEM#{item_id} / ITEM" in verify.output
    assert f"item ITEM#{item_id} / ITEM: v1 edit at " in verify.output


def test_verify_counts_rows_people_changed_as_no_problem(
    runner: Any, seed: Any, database: Database
):
    seed(items=3, settings=1, members=1)
    flag = migrate(database)
    first, second = v1_item_ids(database)[:2]
    items.set_status(database, flag.workspace_id, first, "done")
    items.delete_item(database, flag.workspace_id, second)

    result = runner.invoke(args=["migration", "verify"])

    assert result.exit_code == 0, result.output
    assert "1 changed in v2" in result.output and "1 deleted in v2" in result.output


def test_cleanup_applies_late_writes_first_and_keeps_conflicts(
    runner: Any, seed: Any, database: Database
):
    seed(items=3, settings=1, members=1)
    flag = migrate(database)
    late, conflicted, _ = v1_item_ids(database)
    v1_edit(database, late, "late edit, not yet synced")
    items.set_status(database, flag.workspace_id, conflicted, "done")
    v1_edit(database, conflicted, "v1 edit of a row people changed")

    result = runner.invoke(args=["migration", "cleanup"])

    assert "applied 1 late v1 writes first" in result.output
    assert result.exit_code == 1  # the conflicted row is kept
    assert database.get(keys.v1_item(late), consistent=True) is None
    late_copy = database.get(keys.item(flag.workspace_id, late), consistent=True)
    assert late_copy["title"] == s("late edit, not yet synced")
    assert database.get(keys.v1_item(conflicted), consistent=True) is not None
