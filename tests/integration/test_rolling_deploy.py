"""A rolling deploy, tried as an operator would (PRODUCT.md promise 13): a v1 server keeps
editing, inserting and deleting v1 items (about 30 writes a second) before, during and after
the migration, while people edit and delete some of the same items in v2. Afterwards v2
equals v1 for every row nobody changed in v2, and every late v1 write to a row people changed
is reported as a conflict, never applied.

Run with -s to see the measured seconds until v2 caught up after the v1 server's last write.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from devtools.live_server import LiveServer
from store import items, keys, schema
from store.db import Database
from store.migration.conflicts import read_conflicts
from store.migration.flag import read_flag
from store.migration.rows import same_data
from tests.support.helpers import seed_v1, wait_for
from tests.support.late_writes import V1Writer, v1_item_ids
from tests.support.multiprocess import parallel
from tests.support.visitor import Visitor, arrive

pytestmark = pytest.mark.local_only(reason="gunicorn, a v1 writer thread and streams")

ITEMS = 300


def people_change_some(db: Database, workspace_id: str, ids: list[str]) -> dict[str, float]:
    """Owners edit five items and delete three in v2, among those the v1 server writes to."""
    changed: dict[str, float] = {}
    for item_id in ids[:5]:
        found = items.get_item(db, workspace_id, item_id)
        if found is not None:
            items.set_status(db, workspace_id, item_id, "done")
            changed[item_id] = time.time()
    for item_id in ids[5:8]:
        if items.delete_item(db, workspace_id, item_id):
            changed[item_id] = time.time()
    return changed


def v2_matches_v1(db: Database, workspace_id: str, people: set[str]) -> bool:
    """Every v1 item nobody changed in v2 has an identical copy; every copy nobody changed has
    its v1 row (v1 deletes arrived)."""
    v1 = {i: db.get(keys.v1_item(i), consistent=True) for i in v1_item_ids(db)}
    for item_id, row in v1.items():
        if item_id not in people and not same_data(row, db.get(keys.item(workspace_id, item_id))):
            return False
    copies = db.query_all(
        KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues={
            ":pk": {"S": f"WORKSPACE#{workspace_id}"},
            ":prefix": {"S": "ITEM#"},
        },
        ConsistentRead=True,
    )
    for copy in copies:
        item_id = copy["SK"]["S"].removeprefix("ITEM#")
        if item_id not in people and "v2ChangedAt" not in copy and item_id not in v1:
            return False
    return True


def conflicted(db: Database) -> set[str]:
    return {c.v1_pk.removeprefix("ITEM#") for c in read_conflicts(db)[0]}


def run_deploy(server: LiveServer) -> tuple[Database, str, V1Writer, dict[str, float]]:
    """Seed v1, start the v1 writer, migrate by signing in, let people change rows in v2, keep
    v1 writing a few seconds more, stop it."""
    db = server.database
    accounts = seed_v1(db, items=ITEMS, settings=3, members=3, seed=4)
    writer = V1Writer(db, v1_item_ids(db)).start()
    try:
        time.sleep(1.0)
        owner = next(a for a in accounts if a.role == "owner")
        visitor = Visitor(server.url)
        visitor.login(owner.email)
        arrive(visitor, "/workspaces")
        flag = read_flag(db)
        assert flag is not None and flag.workspace_id
        # People change rows the v1 server keeps writing to (its ids, as of now).
        people = people_change_some(db, flag.workspace_id, list(writer.ids))
        time.sleep(3.0)
    finally:
        writer.stop()
    assert writer.writes > 60, "the v1 writer barely wrote"
    visitor.get("/workspaces")  # a request after the flag: the background sync starts
    return db, flag.workspace_id, writer, people


def late_after_people(writer: V1Writer, people: dict[str, float]) -> set[str]:
    """Rows people changed that v1 wrote to afterwards: each must be reported."""
    return {i for i, at in people.items() if writer.last_write.get(i, 0) > at}


def test_late_v1_writes_reach_v2_by_themselves_and_conflicts_are_reported(
    live_server_factory: Callable[..., LiveServer],
):
    server = live_server_factory(workers=2, extra_env={"MIGRATION_SYNC_SECONDS": "1"})
    db, workspace_id, writer, people = run_deploy(server)
    last_write = writer.stopped_at or time.time()

    wait_for(lambda: v2_matches_v1(db, workspace_id, set(people)), timeout=120, step=0.5)
    caught_up = time.time() - last_write
    must_report = late_after_people(writer, people)
    wait_for(lambda: must_report <= conflicted(db), timeout=60, step=0.5)

    print(  # noqa: T201 - the measured numbers, shown with -s
        f"\nrolling deploy: {writer.writes} v1 writes in {last_write - writer.started_at:.1f} s "
        f"({writer.writes / (last_write - writer.started_at):.1f}/s); v2 caught up "
        f"{caught_up:.1f} s after the last; {len(conflicted(db))} conflicts"
    )
    assert conflicted(db) <= set(people)
    for item_id, _ in people.items():  # v2's version stayed, deleted rows stayed deleted
        copy = db.get(keys.item(workspace_id, item_id), consistent=True)
        assert copy is None or copy["status"] == {"S": "done"}

    # The operator's sync from two processes at once, then again: nothing left to apply.
    results = parallel(lambda _: server.run_flask("migration", "sync", check=False), 2)
    expected = 1 if conflicted(db) else 0
    assert [r.returncode for r in results] == [expected, expected], [r.stdout for r in results]
    again = server.run_flask("migration", "sync", check=False)
    assert "applied 0 late v1 writes" in again.stdout, again.stdout
    assert v2_matches_v1(db, workspace_id, set(people))


@pytest.fixture
def streamless_table(local_endpoint: str) -> Iterator[str]:
    from store.db import build_client

    client = build_client(endpoint=local_endpoint, region="us-east-1", local_credentials=True)
    name = f"live-nostream-{uuid.uuid4().hex[:8]}"
    schema.ensure_table(client, name, poll=0.05, stream=False)
    yield name
    client.delete_table(TableName=name)


def test_without_streams_sync_compares_every_row_from_two_processes_at_once(
    live_server_factory: Callable[..., LiveServer], streamless_table: str
):
    server = live_server_factory(
        workers=2,
        table=streamless_table,
        init_table=False,
        extra_env={"MIGRATION_SYNC_SECONDS": "0"},
    )
    db, workspace_id, writer, people = run_deploy(server)

    results = parallel(lambda _: server.run_flask("migration", "sync", check=False), 2)

    for result in results:
        assert "read from: full comparison (the table has no stream)" in result.stdout
        assert result.returncode in (0, 1), result.stdout + result.stderr
    assert v2_matches_v1(db, workspace_id, set(people))
    # Without a stream only edits can be dated (v1's updatedAt); each is reported.
    edited_late = {i for i in late_after_people(writer, people) if i not in writer.deleted}
    assert edited_late <= conflicted(db) <= set(people)
    again = server.run_flask("migration", "sync", check=False)
    assert "applied 0 late v1 writes" in again.stdout
