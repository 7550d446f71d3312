"""Runs the migration for this process: in bounded slices on requests, and in a background
thread where the host gives the app time outside requests.

The gated request that finds no live holder runs the first slice itself (``advance``): a
small table is done before the response, and the person lands on the page they asked for.
What is left then goes on in a background thread (``thread`` mode) or, on hosts that freeze
or recycle the process between requests (``request`` mode), in one slice per progress poll or
preparing-page load that finds no live holder: the slice hands its verified progress over to
the next one through the claim. ``MIGRATION_MODE=auto`` picks the mode per process
(``detect_mode``). A process that exits stops its run at the next page and hands it over, so
the next request resumes at once instead of after a lease.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError
from flask import Flask, current_app, request

from store.db import Database, get_db
from store.migration.acquire import try_acquire
from store.migration.claim import Claim, ClaimObserver, Run, read_claim
from store.migration.engine import Migration, Settings, conclude
from store.migration.errors import PERMANENT, classify, operator_reason
from store.migration.flag import Flag, read_flag
from store.migration.lease import hand_over
from store.migration.status import read_gate_rows
from web.metrics import EmfWriter, record_migration, writer_for

from . import latesync
from .hosting import MODE_REQUEST, MODE_THREAD, detect_mode

log = logging.getLogger(__name__)

# How long an exiting process waits for its background run to stop at a page boundary before
# handing the claim over from the outside (the run's late writes are then fenced off).
EXIT_JOIN_SECONDS = 3.0
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

    def start_reading(self, now: float) -> bool:
        """Whether a new reading is due (one per CLAIM_POLL_SECONDS); if so it is stamped
        before the read, so a read that fails holds for the interval too and DynamoDB in
        trouble is not asked again by every poll, and no take is tried until it is in."""
        if self.read_at is not None and now - self.read_at < CLAIM_POLL_SECONDS:
            return False
        self.read_at, self.tried = now, True
        return True

    def finish_reading(self, claim: Claim | None) -> None:
        self.claim, self.tried = claim, False


@dataclass(eq=False)  # identity: kept in a WeakSet for the exit hook
class ProcessState:
    """What this server process knows about the migration."""

    # The flag once this process has read or written it (it never changes afterwards), so
    # the check costs no DynamoDB call from then on.
    flag: Flag | None = None
    observer: ClaimObserver = field(default_factory=ClaimObserver)
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None
    # The mode MIGRATION_MODE=auto resolved to in this process, once a request showed the host.
    mode: str | None = None
    # Set when the process exits: the running copy stops at its next page and hands over.
    stop: threading.Event = field(default_factory=threading.Event)
    # The run copying in this process now (background or inline), for the exit hook.
    active: Migration | None = None
    # One inline slice at a time in this process; other requests just show the progress.
    slicing: threading.Lock = field(default_factory=threading.Lock)
    claim_cache: ClaimCache = field(default_factory=ClaimCache)
    flag_checked_at: float | None = None
    clock: Callable[[], float] = time.monotonic

    @property
    def flag_seen(self) -> bool:
        return self.flag is not None


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
    """True once this process has read the flag; from then on no DynamoDB call is needed.
    While it is unseen, polls read it at most every CLAIM_POLL_SECONDS per process; the gate
    reads it each time (``gate_reading``), so nobody who landed is sent back by a worker whose
    last reading is a second old."""
    process = state()
    if process.flag_seen:
        return True
    now = process.clock()
    checked = process.flag_checked_at
    if checked is not None and now - checked < CLAIM_POLL_SECONDS:
        return False
    process.flag_checked_at = now
    process.flag = read_flag(get_db())
    return process.flag_seen


def current_claim() -> Claim | None:
    """The claim, read at most every CLAIM_POLL_SECONDS by this process (strongly
    consistent when read); a stale copy is harmless, every write on it is conditional."""
    process = state()
    cache = process.claim_cache
    with cache.lock:
        if cache.start_reading(process.clock()):
            cache.finish_reading(read_claim(get_db()))
        return cache.claim


def gate_reading(user_id: str) -> tuple[Claim | None, bool]:
    """The gate's reads, in one round trip: the flag (each time), the claim when this
    process's reading of it is due (as ``current_claim``) and, while no claim has been seen,
    the person's own v1 member row. Returns the claim and whether that member row exists
    (then there is v1 data to copy); the flag, if found, is remembered."""
    process = state()
    cache = process.claim_cache
    with cache.lock:
        now = process.clock()
        process.flag_checked_at = now
        due = cache.start_reading(now)
        member_of = user_id if due and cache.claim is None else None
        rows = read_gate_rows(get_db(), claim=due, v1_member_of=member_of)
        if due:
            cache.finish_reading(rows.claim)
        if rows.flag is not None:  # never unset: a run in this process may have just set it
            process.flag = rows.flag
        return cache.claim, rows.v1_member


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


# --- which mode this host needs -------------------------------------------------------------


def mode(app: Flask) -> str:
    """MIGRATION_MODE, with ``auto`` resolved once per process from the current request."""
    configured = app.config.get("MIGRATION_MODE", "auto")
    if configured in (MODE_THREAD, MODE_REQUEST):
        return configured
    process = state(app)
    if process.mode is None:
        process.mode, why = detect_mode(request.environ)
        log.info("migration mode: %s (%s)", process.mode, why)
    return process.mode


# --- running the copy -----------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """What ``advance`` did: ``flag`` if the migration finished here and now; ``sliced`` if
    a slice ran in this request (so the claim read before it is out of date)."""

    flag: Flag | None = None
    sliced: bool = False


def advance(user_id: str, claim: Claim | None, *, first: bool = False) -> Step:
    """Move the migration on from this request, unless a live holder (elsewhere or in this
    process) is making progress. ``claim`` is the claim row as the caller just read it.

    Request mode runs one slice inline. Thread mode starts the background run; ``first`` (the
    gated request) then waits up to a slice for it, so a small table is done at once."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if mode(app) == MODE_REQUEST:
        return _run_slice(app, user_id, claim)
    started = kick(user_id, claim)
    if first and started is not None:
        started.join(app.config["MIGRATION_SLICE_SECONDS"])
        return Step(flag=state(app).flag)
    return Step()


def kick(user_id: str, claim: Claim | None) -> threading.Thread | None:
    """Start a background run in this process unless one is running here or elsewhere with a
    live claim; the thread if this call started it. ``claim``: as the caller just read it."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    process = state(app)
    with process.lock:
        if process.thread is not None and process.thread.is_alive():
            return None
        settings = settings_from(app)
        db = get_db()
        run = _acquire(db, user_id, process, settings, claim)
        if run is None:
            return None
        migration = Migration(db, run, settings, stop=process.stop)
        process.thread = threading.Thread(
            target=_run,
            args=(process, migration, writer_for(app)),
            name="migration",
            daemon=True,
        )
        process.thread.start()
        return process.thread


def _acquire(
    db: Database, user_id: str, process: ProcessState, settings: Settings, claim: Claim | None
) -> Run | None:
    """Take the claim on this reading of it, at most once per reading (so however many
    requests arrive, a claim that is not free costs no write)."""
    seen_at = _take_turn(process)
    if seen_at is None:
        return None  # this reading of the claim was already tried: wait for the next one
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
        # This reading stays tried: the next attempt waits for the next reading, so a
        # throttled take is not repeated by every poll.
        level = logging.ERROR if classify(exc) == PERMANENT else logging.WARNING
        log.log(level, "could not claim the migration: %s", operator_reason(exc))
        return None
    if run is not None:
        _forget_claim(process)
    return run


def _concluded(migration: Migration, metrics: EmfWriter | None) -> Flag | None:
    """``conclude`` with one log event and one metric saying how the run or slice ended, what
    it copied and how long it took. A run that returns no flag paused if it was asked to (its
    slice ended, or the process is stopping) and failed otherwise (conclude logged why)."""
    started = time.monotonic()
    flag = conclude(migration)
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    outcome = "complete" if flag else "paused" if migration.pause_requested() else "failed"
    progress = migration.progress
    with progress.lock:
        counts = {
            "items": progress.items,
            "settings": progress.settings,
            "members": progress.members,
            "kept_back": sum(progress.kept.values()),
        }
    log.info(
        "migration run %s %s after %.0f ms: %d items, %d settings, %d members, %d kept back",
        migration.run.run_id,
        outcome,
        duration_ms,
        *counts.values(),
        extra={"event": "migration", "outcome": outcome, "duration_ms": duration_ms, **counts},
    )
    record_migration(metrics, outcome, counts, duration_ms)
    return flag


def _run(process: ProcessState, migration: Migration, metrics: EmfWriter | None = None) -> None:
    process.active = migration
    try:
        _finished(process, _concluded(migration, metrics))
    except Exception:
        # A thread's exception would vanish silently; the claim lapses and is taken over.
        log.exception("migration run %s crashed", migration.run.run_id)
    finally:
        process.active = None


def _run_slice(app: Flask, user_id: str, claim: Claim | None) -> Step:
    """Request mode: take the claim if nobody is making progress, copy until the slice's
    deadline, then write the flag or hand the claim over to the next request."""
    process = state(app)
    if not process.slicing.acquire(blocking=False):
        return Step()  # one inline slice at a time per process
    try:
        return _slice(app, process, user_id, claim)
    finally:
        process.slicing.release()


def _slice(app: Flask, process: ProcessState, user_id: str, claim: Claim | None) -> Step:
    settings, db = settings_from(app), get_db()
    run = _acquire(db, user_id, process, settings, claim)
    if run is None:
        return Step()  # nothing taken: the cached reading stays, or every poll would read
    deadline = time.monotonic() + app.config["MIGRATION_SLICE_SECONDS"]
    migration = Migration(db, run, settings, deadline=deadline, stop=process.stop)
    process.active = migration
    try:
        flag = _concluded(migration, writer_for(app))
    except Exception:
        # As in the background thread: logged, and the claim lapses after a lease.
        log.exception("migration run %s crashed", run.run_id)
        return Step(sliced=True)
    finally:
        process.active = None
        # The slice moved the claim (handed over, or complete): the next poll reads it anew.
        _forget_claim(process)
    _finished(process, flag)
    return Step(flag=flag, sliced=True)


def _finished(process: ProcessState, flag: Flag | None) -> None:
    if flag is not None:
        process.flag = flag


def migrated_workspace_id() -> str | None:
    """The workspace the migration filled (None before the flag or on a fresh install); the
    flag is read once per process, then remembered (it never changes)."""
    process = state()
    if process.flag is None:
        process.flag = read_flag(get_db())
    return process.flag.workspace_id if process.flag else None


# --- a process that exits -------------------------------------------------------------------

_processes: weakref.WeakSet[ProcessState] = weakref.WeakSet()
_exit_hook_registered = False


def stop_runs(process: ProcessState, join_seconds: float = EXIT_JOIN_SECONDS) -> None:
    """Stop this process's run at its next page and hand the claim over (it publishes its
    verified cursors); if the run does not stop in time, hand over from here: the claim's new
    version stops its heartbeat, the fences refuse its late fenced writes, and the next run
    copies into a new partition, where its late copies land unseen."""
    process.stop.set()
    thread, migration = process.thread, process.active
    if thread is not None and thread.is_alive():
        thread.join(join_seconds)
        if thread.is_alive() and migration is not None:
            log.warning("migration run %s did not stop in time; handing over", migration.run.run_id)
            hand_over(migration.db, migration.run, migration.progress, in_flight=True)


def stop_all_runs(why: str = "the process is exiting") -> None:
    """Stop every run of this process and hand the claim over; a no-op for a process whose
    runs were already stopped (gunicorn's ``worker_exit`` calls it, then the exit hook)."""
    for process in list(_processes):
        if process.stop.is_set():
            continue
        running = process.thread is not None and process.thread.is_alive()
        if running or process.active is not None:
            log.info("migration: %s, handing the copy over", why)
        try:
            stop_runs(process)
        except Exception:
            log.exception("could not hand the migration over at exit")


def _stop_all_runs() -> None:
    stop_all_runs()


def _register_exit_hook() -> None:
    """Once per interpreter. Registered with threading's exit hooks where there are (they run
    before the interpreter joins non-daemon threads, such as the copy's thread pool, which
    would otherwise finish the whole copy first); atexit elsewhere. gunicorn workers leave
    through sys.exit on SIGTERM and on max_requests, so this runs in both."""
    global _exit_hook_registered
    if _exit_hook_registered:
        return
    register = getattr(threading, "_register_atexit", None) or atexit.register
    register(_stop_all_runs)
    _exit_hook_registered = True


def init_app(app: Flask) -> None:
    process = ProcessState()
    app.extensions["migration"] = process
    _processes.add(process)
    _register_exit_hook()
    latesync.init_app(app)
