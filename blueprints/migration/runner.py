"""Runs the migration in a background thread of this process, at most one at a time.

The request that finds the flag missing starts (or joins) the run and shows the preparing
page at once; the run goes on beside the requests that poll its progress.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError
from flask import Flask, current_app

from store.db import Database, get_db
from store.migration.claim import Claim, ClaimObserver, Run, read_claim, try_acquire
from store.migration.engine import Settings, run_migration
from store.migration.errors import PERMANENT, classify, operator_reason
from store.migration.flag import read_flag

log = logging.getLogger(__name__)
# However many tabs poll, this process reads the claim, and the flag while it is unseen, at
# most once per this many seconds (README: the bound on DynamoDB calls while preparing).
CLAIM_POLL_SECONDS = 2.0


@dataclass
class ClaimCache:
    """The claim as this process last read it, when (its own monotonic clock), and whether
    a take was already tried on that reading (at most one per reading)."""

    claim: Claim | None = None
    read_at: float | None = None
    tried: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class ProcessState:
    """What this server process knows about the migration."""

    flag_seen: bool = False
    observer: ClaimObserver = field(default_factory=ClaimObserver)
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None
    claim_cache: ClaimCache = field(default_factory=ClaimCache)
    flag_checked_at: float | None = None
    clock: Callable[[], float] = time.monotonic


def state(app: Flask | None = None) -> ProcessState:
    return (app or current_app).extensions["migration"]


def settings_from(app: Flask) -> Settings:
    config = app.config
    return Settings(
        lease=config["MIGRATION_LEASE_SECONDS"],
        budget=config["MIGRATION_BUDGET_SECONDS"],
        writers=config["MIGRATION_WRITERS"],
        segments=config["MIGRATION_WRITERS"],
    )


def flag_seen(*, cached: bool = True) -> bool:
    """True once this process has read the flag; from then on no DynamoDB call is needed.
    While it is unseen, polls read it at most every CLAIM_POLL_SECONDS per process; the gate
    (``cached=False``) reads it each time, so nobody who landed is sent back by a worker whose
    last reading is a second old."""
    process = state()
    if process.flag_seen:
        return True
    now = process.clock()
    checked = process.flag_checked_at
    if cached and checked is not None and now - checked < CLAIM_POLL_SECONDS:
        return False
    process.flag_checked_at = now
    if read_flag(get_db()) is not None:
        process.flag_seen = True
    return process.flag_seen


def current_claim() -> Claim | None:
    """The claim, read at most every CLAIM_POLL_SECONDS by this process (strongly
    consistent when read); a stale copy is harmless, every write on it is conditional."""
    process = state()
    cache = process.claim_cache
    with cache.lock:
        now = process.clock()
        if cache.read_at is None or now - cache.read_at >= CLAIM_POLL_SECONDS:
            cache.claim, cache.read_at, cache.tried = read_claim(get_db()), now, False
        return cache.claim


def _take_turn(process: ProcessState) -> float | None:
    """Whether this reading of the claim may still be used for a take (once per reading);
    the moment it was read, for judging a lapse on what was actually seen."""
    cache = process.claim_cache
    with cache.lock:
        if cache.tried:
            return None
        cache.tried = True
        return cache.read_at if cache.read_at is not None else process.clock()


def _forget_claim(process: ProcessState) -> None:
    with process.claim_cache.lock:
        process.claim_cache.read_at = None


def kick(user_id: str, claim: Claim | None) -> None:
    """Start a run in this process unless one is running here or elsewhere with a live claim.

    ``claim`` is the claim row as the caller just read it."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    process = state(app)
    with process.lock:
        if process.thread is not None and process.thread.is_alive():
            return
        seen_at = _take_turn(process)
        if seen_at is None:
            return  # this reading of the claim was already tried: wait for the next one
        settings = settings_from(app)
        db = get_db()
        try:
            run = try_acquire(
                db,
                user_id,
                process.observer,
                lease=settings.lease,
                segments=settings.segments,
                current=claim,
                monotonic=lambda: seen_at,
            )
        except (ClientError, BotoCoreError) as exc:
            # The page still shows progress; a permanent error has marked the claim failed.
            level = logging.ERROR if classify(exc) == PERMANENT else logging.WARNING
            log.log(level, "could not claim the migration: %s", operator_reason(exc))
            _forget_claim(process)
            return
        if run is None:
            return
        _forget_claim(process)
        process.thread = threading.Thread(
            target=_run, args=(process, db, run, settings), name="migration", daemon=True
        )
        process.thread.start()


def _run(process: ProcessState, db: Database, run: Run, settings: Settings) -> None:
    try:
        if run_migration(db, run, settings) is not None:
            process.flag_seen = True
    except Exception:
        # A thread's exception would vanish silently; the claim lapses and is taken over.
        log.exception("migration run %s crashed", run.run_id)


def init_app(app: Flask) -> None:
    app.extensions["migration"] = ProcessState()
