"""Where a workspace's bounded follow-up work runs: a rename's name copies and a deletion.

The same choice the migration makes (``MIGRATION_MODE``, ``auto`` decided per process from the
host): in ``thread`` mode one background thread per workspace and job in this process goes
on until the work is done; in ``request`` mode (serverless, recycled workers without threads)
the requests that notice the work do one bounded slice each. The store functions are safe to
run from any number of processes at once, so a thread and a request slice elsewhere (or a
crashed process's leftovers) never conflict.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import current_app

from blueprints.migration import runner as migration_runner
from blueprints.migration.hosting import MODE_REQUEST
from store import workspace_lifecycle as lifecycle
from store.db import Database, get_db

log = logging.getLogger(__name__)

# Member rows a request renames itself before answering; the rest follow in the background.
NAMES_PER_REQUEST = 25
NAMES_PER_STEP = 200

_running: dict[tuple[str, str], threading.Thread] = {}
_lock = threading.Lock()


def _in_thread(job: str, workspace_id: str, step: Callable[[], bool]) -> None:
    """Run ``step`` until it says done, in one thread per (job, workspace) in this process."""

    def loop() -> None:
        try:
            while not step():
                time.sleep(0.05)  # other requests get the connection pool too
        except Exception:
            log.exception(
                "workspace %s: background %s stopped; a later request resumes it", workspace_id, job
            )
        finally:
            with _lock:
                _running.pop((job, workspace_id), None)

    with _lock:
        if (job, workspace_id) in _running:
            return
        thread = threading.Thread(target=loop, name=f"{job}-{workspace_id}", daemon=True)
        _running[(job, workspace_id)] = thread
        thread.start()


def wait_idle(timeout: float) -> bool:
    """Wait for this process's background jobs to finish (tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _lock:
            threads = list(_running.values())
        if not threads:
            return True
        threads[0].join(max(0.0, deadline - time.monotonic()))
    return False


def _request_mode() -> bool:
    return migration_runner.mode(current_app) == MODE_REQUEST


def continue_names(workspace_id: str, *, first: bool = False) -> None:
    """Bring member rows to the workspace's current name: some now, the rest as the mode
    says. ``first``: the rename's own request, which always does a slice itself."""
    db = get_db()
    if first or _request_mode():
        if lifecycle.copy_name(db, workspace_id, max_rows=NAMES_PER_REQUEST):
            return
        if _request_mode():
            return
    _in_thread("rename", workspace_id, lambda: _names_step(db, workspace_id))


def _names_step(db: Database, workspace_id: str) -> bool:
    return lifecycle.copy_name(db, workspace_id, max_rows=NAMES_PER_STEP)


def continue_deletion(workspace_id: str, *, first: bool = False) -> lifecycle.Deletion | None:
    """Delete a slice now (the deleting request, or any request in request mode), and in
    thread mode leave a thread to finish; the deletion's state afterwards."""
    db = get_db()
    seconds = float(current_app.config.get("MIGRATION_SLICE_SECONDS", 1.0))
    state = lifecycle.deletion(db, workspace_id)
    if state is None or state.done:
        return state
    if first or _request_mode():
        state = lifecycle.delete_slice(db, workspace_id, seconds=seconds)
    if state is not None and not state.done and not _request_mode():
        _in_thread("delete", workspace_id, lambda: _deletion_step(db, workspace_id, seconds))
    return state


def _deletion_step(db: Database, workspace_id: str, seconds: float) -> bool:
    state = lifecycle.delete_slice(db, workspace_id, seconds=seconds)
    return state is None or state.done
