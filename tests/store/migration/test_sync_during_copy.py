"""A v1 server writing during the copy: with a stream the copy does not start over (the
late-write sync applies those writes after the flag)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from store import keys
from store.db import Database
from store.migration.catchup import catch_up
from store.migration.rows import same_data
from store.migration.sync import find_target
from tests.support.late_writes import (
    one_writer_on_moto,
    stream_table,
    v1_delete,
    v1_insert,
    v1_item_ids,
)
from tests.support.migration import FAST, migrate


@pytest.fixture
def table_name(ddb_client: Any) -> Iterator[str]:
    yield from stream_table(ddb_client)


@pytest.fixture(autouse=True)
def _one_writer_on_moto(ddb_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    one_writer_on_moto(ddb_client, monkeypatch)


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
            v1_delete(database, gone)

    flag = migrate(database, on_page=v1_server_writes)

    assert flag is not None, "the copy started over"
    assert (flag.items, database.get(keys.item(flag.workspace_id, "during"))) == (15, None)
    catch_up(database, find_target(database))
    copy = database.get(keys.item(flag.workspace_id, "during"), consistent=True)
    assert same_data(database.get(keys.v1_item("during"), consistent=True), copy)
    assert database.get(keys.item(flag.workspace_id, gone), consistent=True) is None
