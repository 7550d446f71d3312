"""Late v1 writes reach v2 by themselves while the app runs (PRODUCT.md promise 13).

After the flag, one server process at a time holds the **sync lease**
(``store.migration.synclease``) and applies what the table's stream shows every
``MIGRATION_SYNC_SECONDS`` (2 s). Which process: the first that serves a request after the
flag and finds the lease free, or lapsed (the same version for a whole
``MIGRATION_LEASE_SECONDS`` on its own clock). Handing over: a process that exits deletes the
lease row, so the next request anywhere takes it at once; one that dies or freezes stops
renewing, and another takes over after a lease. A paused holder that wakes up can only repeat
work (every write is conditional, ``store.migration.sync``).

Where it runs, like the copy (``runner.mode``): ``thread`` mode in a background thread of
the holder; ``request`` mode in a bounded slice of a request, at most once per
``REQUEST_EVERY`` seconds per process. Without a stream (or once it expired), the holder
compares every row at most once per ``FULL_EVERY`` seconds instead, and only in thread mode
(a request never pays for a whole table). DynamoDB calls per process and minute: the holder
about one GetRecords per poll and shard, a lease renewal per third of a lease, DescribeTable/
DescribeStream and two reads of its own rows per 30 s; every other process one read of the
lease per second poll at most. ``MIGRATION_SYNC_SECONDS=0`` turns it off (``migration sync``
still works).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, current_app

from store.db import Database, get_db, new_id
from store.migration.catchup import FULL, catch_up, compare_everything
from store.migration.stream import Reader
from store.migration.sync import Target, find_target
from store.migration.synclease import SyncLease

from .hosting import MODE_REQUEST

log = logging.getLogger(__name__)

REQUEST_EVERY = 5.0
FULL_EVERY = 300.0
# A request's slice: this many stream records, this many seconds at most.
SLICE_RECORDS = 500
SLICE_SECONDS = 0.5


@dataclass(eq=False)
class LateSync:
    """This process's late-write applier."""

    lease: SyncLease
    interval: float
    reader: Reader = field(default_factory=Reader)
    target: Target | None = None
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    busy: threading.Lock = field(default_factory=threading.Lock)
    next_at: float = float("-inf")
    full_due_at: float = float("-inf")
    # Passes run and late writes applied by this process (tests and the log read them).
    passes: int = 0
    applied: int = 0

    def step(self, db: Database, *, deadline: float, allow_full: bool) -> None:
        """One poll: hold the lease, then apply what the stream shows (bounded)."""
        if not self.lease.keep(db):
            return
        if self.target is None:
            self.target = find_target(db)
            if self.target is None:
                return
        done = catch_up(
            db,
            self.target,
            reader=self.reader,
            deadline=deadline,
            max_records=SLICE_RECORDS if not allow_full else 5 * SLICE_RECORDS,
            until_done=False,
        )
        if done.via == FULL and allow_full and time.monotonic() >= self.full_due_at:
            self.full_due_at = time.monotonic() + FULL_EVERY
            log.info("late v1 writes: comparing every row (%s)", done.why)
            done = compare_everything(db, self.target, done.why)
            self.reader = Reader()  # follow the stream (if any) from the comparison on
        self.passes += 1
        self.applied += done.tally.applied
        if done.tally.applied or done.tally.conflicts:
            log.info(
                "late v1 writes: %d applied, %d in conflict with v2",
                done.tally.applied,
                done.tally.conflicts,
            )


def state(app: Flask | None = None) -> LateSync | None:
    found: LateSync | None = (app or current_app).extensions.get("late_sync")
    return found


def tick(mode: Callable[[], str]) -> None:
    """Called on requests once the flag is seen: cheap unless a poll is due. ``mode``: the
    process's migration mode (asked only when the sync is on)."""
    syncer = state()
    if syncer is None:
        return
    if mode() != MODE_REQUEST:
        if syncer.thread is None or not syncer.thread.is_alive():
            _start_thread(current_app._get_current_object(), syncer)  # type: ignore[attr-defined]
        return
    now = time.monotonic()
    if now < syncer.next_at or not syncer.busy.acquire(blocking=False):
        return
    try:
        syncer.next_at = now + max(REQUEST_EVERY, syncer.interval)
        syncer.step(get_db(), deadline=now + SLICE_SECONDS, allow_full=False)
    except Exception:
        log.exception("late v1 writes: a slice failed; the next one tries again")
    finally:
        syncer.busy.release()


def _start_thread(app: Flask, syncer: LateSync) -> None:
    with syncer.busy:
        if syncer.thread is not None and syncer.thread.is_alive():
            return
        syncer.thread = threading.Thread(
            target=_poll_forever, args=(app, syncer), name="late-v1-sync", daemon=True
        )
        syncer.thread.start()


def _poll_forever(app: Flask, syncer: LateSync) -> None:
    with app.app_context():
        db = get_db()
        while not syncer.stop.wait(syncer.interval):
            try:
                syncer.step(db, deadline=time.monotonic() + syncer.interval, allow_full=True)
            except Exception:
                # Never die silently; DynamoDB in trouble is asked again next poll.
                log.exception("late v1 writes: a poll failed; the next one tries again")
        syncer.lease.release(db)


def stop(app: Flask) -> None:
    """Stop this process's poller and let the lease go (at exit, and in tests)."""
    syncer = state(app)
    if syncer is None:
        return
    syncer.stop.set()
    if syncer.thread is not None:
        syncer.thread.join(5)


def init_app(app: Flask) -> None:
    interval = float(app.config.get("MIGRATION_SYNC_SECONDS", 2.0))
    if interval <= 0:
        return
    lease = SyncLease(me=new_id(), lease_seconds=float(app.config["MIGRATION_LEASE_SECONDS"]))
    app.extensions["late_sync"] = LateSync(lease=lease, interval=interval)
    # Hand over at exit (SIGTERM, a recycled worker): the next request anywhere takes it.
    atexit.register(stop, app)
