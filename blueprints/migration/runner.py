"""Runs the migration in a background thread of this process, at most one at a time.

The request that finds the flag missing starts (or joins) the run and shows the preparing
page at once; the run goes on beside the requests that poll its progress.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError
from flask import Flask, current_app

from store.db import Database, get_db
from store.migration.claim import Claim, ClaimObserver, Run, try_acquire
from store.migration.engine import Settings, run_migration
from store.migration.flag import read_flag

log = logging.getLogger(__name__)


@dataclass
class ProcessState:
    """What this server process knows about the migration."""

    flag_seen: bool = False
    observer: ClaimObserver = field(default_factory=ClaimObserver)
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None


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


def flag_seen() -> bool:
    """True once this process has read the flag; from then on no DynamoDB call is needed."""
    process = state()
    if process.flag_seen:
        return True
    if read_flag(get_db()) is not None:
        process.flag_seen = True
    return process.flag_seen


def kick(user_id: str, claim: Claim | None) -> None:
    """Start a run in this process unless one is running here or elsewhere with a live claim.

    ``claim`` is the claim row as the caller just read it."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    process = state(app)
    with process.lock:
        if process.thread is not None and process.thread.is_alive():
            return
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
            )
        except (ClientError, BotoCoreError) as exc:
            # DynamoDB is struggling: the page still shows progress, the next poll tries again.
            log.warning("could not claim the migration: %s", exc)
            return
        if run is None:
            return
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
