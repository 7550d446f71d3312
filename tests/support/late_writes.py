"""What a v1 server still running during a rolling deploy writes, for late-write tests."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from store import keys
from store.db import Database, now_iso, s
from store.migration import sync
from tests.support.helpers import is_moto, scan_all


def v1_item_ids(database: Database) -> list[str]:
    return sorted(
        r["PK"]["S"].removeprefix(keys.V1_ITEM_PREFIX)
        for r in scan_all(database)
        if r["PK"]["S"].startswith(keys.V1_ITEM_PREFIX) and r["SK"]["S"] == keys.V1_ITEM_SK
    )


def v1_edit(database: Database, item_id: str, title: str) -> None:
    """What a v1 server does on an edit: a new title and updatedAt, every other attribute kept."""
    database.client.update_item(
        TableName=database.table,
        Key=keys.v1_item(item_id),
        UpdateExpression="SET title = :t, updatedAt = :now",
        ExpressionAttributeValues={":t": s(title), ":now": s(now_iso())},
    )


def v1_insert(database: Database, item_id: str, title: str = "late insert") -> None:
    now = now_iso()
    row = {
        **keys.v1_item(item_id),
        "title": s(title),
        "status": s("open"),
        "createdAt": s(now),
        "updatedAt": s(now),
        "createdBy": s("u-v1"),
    }
    database.client.put_item(TableName=database.table, Item=row)


def v1_delete(database: Database, item_id: str) -> None:
    database.client.delete_item(TableName=database.table, Key=keys.v1_item(item_id))


@dataclass
class V1Writer:
    """A v1 server that keeps writing: about ``per_second`` edits, inserts and deletes of v1
    items, from its own thread, until stopped (at most ``max_seconds``). It remembers when it
    last wrote each item, so a test can tell which late writes must reach v2."""

    database: Database
    ids: list[str]
    per_second: float = 30.0
    max_seconds: float = 120.0
    seed: int = 9
    last_write: dict[str, float] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    writes: int = 0
    stopped_at: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> V1Writer:
        self.started_at = time.time()
        self._thread = threading.Thread(target=self._run, name="v1-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.stopped_at = time.time()

    def _run(self) -> None:
        rng = random.Random(self.seed)
        start = time.monotonic()
        deadline = start + self.max_seconds
        inserted = 0
        # On a schedule, not a fixed pause: a slow write does not lower the rate aimed at.
        while not self._stop.wait(
            max(0.0, start + self.writes / self.per_second - time.monotonic())
        ):
            if time.monotonic() > deadline:
                return
            roll = rng.random()
            if roll < 0.15:
                inserted += 1
                item_id = f"late-{self.seed}-{inserted}"
                v1_insert(self.database, item_id)
                self.ids.append(item_id)
                self.deleted.discard(item_id)
            elif roll < 0.25 and len(self.ids) > 10:
                item_id = self.ids.pop(rng.randrange(len(self.ids)))
                v1_delete(self.database, item_id)
                self.deleted.add(item_id)
            else:
                item_id = rng.choice(self.ids)
                v1_edit(self.database, item_id, f"v1 edit {self.writes}")
            self.last_write[item_id] = time.time()
            self.writes += 1


def one_writer_on_moto(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto runs transactions without a lock, so the sync sends one write at a time there."""
    if is_moto(client):
        monkeypatch.setattr(sync, "WRITERS", 1)
