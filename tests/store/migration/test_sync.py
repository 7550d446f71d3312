"""Late v1 writes reach v2 (PRODUCT.md promise 13): from the stream and by full comparison,
and v2 wins over them where people changed the row."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from store import items, keys, schema, settings, workspaces
from store.changes import CHANGED_AT
from store.db import Database, now_iso, s
from store.migration.catchup import FULL, STREAM, catch_up
from store.migration.conflicts import DELETE, EDIT, read_conflicts
from store.migration.rows import same_data
from store.migration.sync import Target, find_target
from tests.support.helpers import seed_v1
from tests.support.late_writes import (
    v1_delete,
    v1_edit,
    v1_insert,
    v1_item_ids,
)
from tests.support.migration import FAST, migrate

pytestmark = pytest.mark.stream_table


@pytest.fixture
def target(database: Database, seed: Any) -> Target:
    seed(items=12, settings=3, members=3)
    flag = migrate(database)
    assert flag is not None
    found = find_target(database)
    assert found is not None and found.workspace_id == flag.workspace_id
    return found


def v1_item(database: Database, item_id: str) -> dict[str, Any] | None:
    return database.get(keys.v1_item(item_id), consistent=True)


def v2_item(database: Database, target: Target, item_id: str) -> dict[str, Any] | None:
    return database.get(keys.item(target.workspace_id, item_id), consistent=True)


def in_sync(database: Database, target: Target, item_id: str) -> bool:
    v1, v2 = v1_item(database, item_id), v2_item(database, target, item_id)
    return (v1 is None and v2 is None) or (v1 is not None and same_data(v1, v2))


@pytest.mark.parametrize("full", [False, True], ids=["stream", "full"])
def test_late_v1_edits_inserts_and_deletes_reach_v2(database: Database, target: Target, full):
    edited, deleted = v1_item_ids(database)[:2]
    v1_edit(database, edited, "edited late in v1")
    v1_insert(database, "late1")
    v1_delete(database, deleted)

    done = catch_up(database, target, full=full)

    assert done.via == (FULL if full else STREAM)
    assert done.tally.applied == 3 and done.tally.conflicts == 0 and done.caught_up
    for item_id in (edited, deleted, "late1"):
        assert in_sync(database, target, item_id), item_id
    assert v2_item(database, target, deleted) is None
    assert v2_item(database, target, edited)["title"] == s("edited late in v1")


def test_catching_up_twice_applies_nothing_the_second_time(database: Database, target: Target):
    v1_edit(database, v1_item_ids(database)[0], "once")
    assert catch_up(database, target).tally.applied == 1
    again = catch_up(database, target)
    assert (again.tally.applied, again.tally.unchanged) == (0, 0)
    assert catch_up(database, target, full=True).tally.applied == 0


def test_a_v2_edit_wins_over_a_late_v1_edit_and_is_reported(database: Database, target: Target):
    item_id = v1_item_ids(database)[0]
    found = items.get_item(database, target.workspace_id, item_id)
    items.update_item(database, found, items.ItemFields(title="people's title"))
    v1_edit(database, item_id, "v1's late title")

    done = catch_up(database, target)

    assert done.tally.conflicts == 1
    assert v2_item(database, target, item_id)["title"] == s("people's title")
    conflicts, total = read_conflicts(database)
    assert total == 1
    assert (conflicts[0].v1_pk, conflicts[0].action) == (f"ITEM#{item_id}", EDIT)
    assert conflicts[0].v2_state == "changed in v2" and conflicts[0].at


def test_a_row_deleted_in_v2_is_never_brought_back(database: Database, target: Target):
    item_id = v1_item_ids(database)[0]
    assert items.delete_item(database, target.workspace_id, item_id)
    v1_edit(database, item_id, "v1 still edits it")

    assert catch_up(database, target).tally.conflicts == 1
    assert catch_up(database, target, full=True).tally.applied == 0
    assert v2_item(database, target, item_id) is None
    (conflict,), _ = read_conflicts(database)
    assert conflict.v2_state == "deleted in v2"


def test_a_v1_delete_of_a_row_changed_in_v2_keeps_v2_and_is_reported(
    database: Database, target: Target
):
    item_id = v1_item_ids(database)[0]
    items.set_status(database, target.workspace_id, item_id, "done")
    v1_delete(database, item_id)

    catch_up(database, target)

    assert v2_item(database, target, item_id)[CHANGED_AT]
    (conflict,), _ = read_conflicts(database)
    assert conflict.action == DELETE


def test_v2_rows_people_changed_with_v1_untouched_are_left_alone(
    database: Database, target: Target
):
    """A full comparison sees v1 and v2 differ, but v1 did nothing since the copy."""
    item_id = v1_item_ids(database)[0]
    items.set_status(database, target.workspace_id, item_id, "done")
    settings.save_settings(database, target.workspace_id, {"timezone": "Europe/Berlin"})

    done = catch_up(database, target, full=True)

    assert (done.tally.applied, done.tally.conflicts) == (0, 0)
    assert v2_item(database, target, item_id)["status"] == s("done")


def test_a_late_v1_owner_keeps_the_owner_count_and_the_index_keys(
    database: Database, target: Target
):
    before = workspaces.get_workspace(database, target.workspace_id)
    row = {
        **keys.v1_member("u-late-owner"),
        "email": s("late@x.com"),
        "role": s("owner"),
        "joinedAt": s(now_iso()),
    }
    database.client.put_item(TableName=database.table, Item=row)

    catch_up(database, target)

    copy = database.get(keys.member(target.workspace_id, "u-late-owner"), consistent=True)
    assert same_data(row, copy)
    assert copy[keys.GSI1PK] == s("USER#u-late-owner")
    after = workspaces.get_workspace(database, target.workspace_id)
    assert after.owner_count == before.owner_count + 1

    database.client.delete_item(TableName=database.table, Key=keys.v1_member("u-late-owner"))
    catch_up(database, target)
    assert database.get(keys.member(target.workspace_id, "u-late-owner")) is None
    assert workspaces.get_workspace(database, target.workspace_id).owner_count == (
        before.owner_count
    )


@pytest.fixture
def streamless(ddb_client: Any) -> Iterator[Database]:
    """A table on which db init could not turn a stream on (a server without streams)."""
    name = f"test-nostream-{uuid.uuid4().hex[:8]}"
    schema.ensure_table(ddb_client, name, poll=0.05, stream=False)
    yield Database(client=ddb_client, table=name)
    ddb_client.delete_table(TableName=name)


def test_without_a_stream_it_compares_every_row(streamless: Database):
    seed_v1(streamless, items=5, settings=1, members=2, seed=3)
    assert migrate(streamless) is not None
    target = find_target(streamless)
    deleted = v1_item_ids(streamless)[0]
    v1_insert(streamless, "late2")
    v1_delete(streamless, deleted)

    done = catch_up(streamless, target)

    assert done.via == FULL and "no stream" in done.why
    assert done.tally.applied == 2
    assert in_sync(streamless, target, "late2")
    assert v2_item(streamless, target, deleted) is None


def test_v1_writes_during_the_copy_do_not_restart_it_and_reach_v2_after(
    database: Database, seed: Any
):
    seed(items=15, settings=1, members=1)
    gone = v1_item_ids(database)[0]
    scanned: set[int] = set()

    def v1_server_writes(segment: int) -> None:
        # Once every scan segment has passed: an insert and a delete the copy cannot see.
        scanned.add(segment)
        if len(scanned) == FAST.segments and not database.get(keys.v1_item("during")):
            v1_insert(database, "during")
            v1_insert(database, "during2")  # the counts now differ by one
            v1_delete(database, gone)

    flag = migrate(database, on_page=v1_server_writes)

    assert flag is not None, "the copy started over"
    assert (flag.items, database.get(keys.item(flag.workspace_id, "during"))) == (15, None)
    catch_up(database, find_target(database))
    copy = database.get(keys.item(flag.workspace_id, "during"), consistent=True)
    assert same_data(database.get(keys.v1_item("during"), consistent=True), copy)
    assert database.get(keys.item(flag.workspace_id, gone), consistent=True) is None
