"""The rolling-deploy case: a v1 server keeps writing during the copy and after the flag.

Measures the v1 writes per second sustained while the copy runs (the v1 writer aims at a
rate; DynamoDB Local shares the machine with the copy), and the seconds from the v1 server's
last write until v2 equals v1 again, applied by the app's own background sync (stream).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from store import keys, schema
from store.db import Database, now_iso, query_prefix, s
from store.migration.flag import read_flag
from store.migration.rows import same_data

AFTER_FLAG_SECONDS = 3.0


class Writer(threading.Thread):
    """Edits (75 %), inserts (15 %) and deletes (10 %) of v1 items at about ``rate`` a second."""

    def __init__(self, database: Database, ids: list[str], rate: float) -> None:
        super().__init__(name="bench-v1-writer", daemon=True)
        self.database, self.ids, self.rate = database, ids, rate
        self.stop_now = threading.Event()
        self.times: list[float] = []

    def run(self) -> None:
        rng = random.Random(1)  # noqa: S311 - a repeatable workload, not a secret
        client, table = self.database.client, self.database.table
        start = time.monotonic()
        # On a schedule, not a fixed pause: a slow write does not lower the rate aimed at.
        while not self.stop_now.wait(
            max(0.0, start + len(self.times) / self.rate - time.monotonic())
        ):
            roll, now = rng.random(), now_iso()
            if roll < 0.15:
                item_id = "late-" + uuid.uuid4().hex[:8]
                row = {**keys.v1_item(item_id), "title": s("late"), "status": s("open")}
                row.update(createdAt=s(now), updatedAt=s(now), createdBy=s("v1"))
                client.put_item(TableName=table, Item=row)
                self.ids.append(item_id)
            elif roll < 0.25 and len(self.ids) > 10:
                item_id = self.ids.pop(rng.randrange(len(self.ids)))
                client.delete_item(TableName=table, Key=keys.v1_item(item_id))
            else:
                client.update_item(
                    TableName=table,
                    Key=keys.v1_item(rng.choice(self.ids)),
                    UpdateExpression="SET title = :t, updatedAt = :now",
                    ExpressionAttributeValues={":t": s(f"edit {len(self.times)}"), ":now": s(now)},
                )
            self.times.append(time.perf_counter())


def _v1_items(database: Database) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"TableName": database.table, "ConsistentRead": True}
    while True:
        page = database.client.scan(**params)
        for row in page["Items"]:
            if row["PK"]["S"].startswith(keys.V1_ITEM_PREFIX) and row["SK"]["S"] == "ITEM":
                found[row["PK"]["S"].removeprefix(keys.V1_ITEM_PREFIX)] = row
        if "LastEvaluatedKey" not in page:
            return found
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def caught_up(database: Database, workspace_id: str) -> bool:
    v1 = _v1_items(database)
    copies = {
        row["SK"]["S"].removeprefix(keys.ITEM_PREFIX): row
        for row in query_prefix(database, keys.workspace_pk(workspace_id), keys.ITEM_PREFIX)
    }
    return v1.keys() == copies.keys() and all(same_data(v1[i], copies[i]) for i in v1)


def one_run(client: Any, items: int, rate: float, seed: Any, make_app: Any, sign_in: Any) -> str:
    from blueprints.migration import latesync, runner

    name = f"bench-rolling-{uuid.uuid4().hex[:8]}"
    schema.ensure_table(client, name, poll=0.05, stream=True)  # as db init makes it
    database = Database(client=client, table=name)
    accounts = seed(database, items)
    app = make_app(client, name, MIGRATION_SYNC_SECONDS=0.5)
    browser = sign_in(app, accounts[0].email)
    writer = Writer(database, list(_v1_items(database)), rate)
    writer.start()
    started = time.perf_counter()
    browser.get("/")
    thread = runner.state(app).thread
    if thread is not None:
        thread.join()
    copied = time.perf_counter()
    flag = read_flag(database)
    assert flag is not None and flag.workspace_id, "the migration did not finish"
    browser.get("/")  # people keep using the app: a request after the flag starts the sync
    time.sleep(AFTER_FLAG_SECONDS)
    writer.stop_now.set()
    writer.join()
    last = writer.times[-1]
    while not caught_up(database, flag.workspace_id):
        if time.perf_counter() - last > 300:
            raise RuntimeError("v2 did not catch up within 5 minutes")
        time.sleep(0.5)
    lag = time.perf_counter() - last
    during = sum(1 for t in writer.times if started <= t <= copied)
    latesync.stop(app)
    client.delete_table(TableName=name)
    return (
        f"| {items:,} | {rate:g} | {copied - started:.1f} s | {during / (copied - started):.1f} | "
        f"{len(writer.times)} | {lag:.1f} s |"
    )


def rolling_table(
    server: Callable[[], AbstractContextManager[Any]],
    seed: Any,
    make_app: Any,
    sign_in: Any,
    *,
    quick: bool,
) -> None:
    """One run per row, each on a fresh DynamoDB Local from ``server`` (a client for it):
    every write to a table with a stream pays for all the stream records the server kept
    before, deleted tables' too (tests/support/local_dynamodb.py), so on a shared server a row
    would measure the rows before it. (Measured: the 10,000-item copy took 11 s alone on a
    fresh server, 46-55 s after the two 1,000-item rows on the same one.)"""
    print("\n## Rolling deploy: a v1 server writing during the copy and after the flag\n")
    print("The v1 writer aims at the rate shown (edits, inserts, deletes of v1 items) from")
    print(f"before the first request until {AFTER_FLAG_SECONDS:g} s after the flag; the app's")
    print("background sync (stream, polled every 0.5 s here) applies them.\n")
    print(
        "| v1 items | aimed writes/s | copy | v1 writes/s during the copy | v1 writes | "
        "v2 caught up after the last |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for items, rate in [(1000, 30)] if quick else [(1000, 30), (1000, 100), (10_000, 30)]:
        with server() as client:
            print(one_run(client, items, rate, seed, make_app, sign_in), flush=True)
