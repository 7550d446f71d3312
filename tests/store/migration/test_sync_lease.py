"""The sync lease: one process applies late v1 writes by itself; another takes over only after
seeing the same version for a whole lease on its own clock, or at once after a release."""

from __future__ import annotations

from store import keys
from store.db import Database
from store.migration.synclease import SyncLease


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_one_holder_at_a_time_and_a_takeover_only_after_a_whole_lease(database: Database):
    first_clock, second_clock = Clock(), Clock()
    first = SyncLease("first", 30, monotonic=first_clock)
    second = SyncLease("second", 30, monotonic=second_clock)

    assert first.keep(database)
    assert not second.keep(database)  # sees the version for the first time
    second_clock.now += 29
    assert not second.keep(database)
    first_clock.now += 11  # renews after a third of the lease: a new version
    assert first.keep(database)
    second_clock.now += 2  # 31 s since it first looked, but the version moved meanwhile
    assert not second.keep(database)
    second_clock.now += 30  # the first holder froze: the same version for a whole lease
    assert second.keep(database)

    first_clock.now += 11
    assert not first.keep(database)  # its renewal is refused: it has lost the lease
    assert not first.held
    row = database.get(keys.migration_sync_lease(), consistent=True)
    assert row["owner"] == {"S": "second"}


def test_a_released_lease_is_taken_at_once(database: Database):
    first, second = SyncLease("first", 30, monotonic=Clock()), SyncLease("second", 30)
    assert first.keep(database)
    first.release(database)
    assert second.keep(database)
