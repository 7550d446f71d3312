"""The start page and the health check."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError
from flask import Blueprint, current_app, jsonify, redirect, render_template, url_for

from blueprints.migration import runner as migration_runner
from store import accounts
from store import workspaces as store_workspaces
from store.db import get_db
from store.migration.status import migration_state
from web import sessions

log = logging.getLogger(__name__)
bp = Blueprint("main", __name__)


@bp.get("/")
@sessions.login_required
def index():
    """The person's last workspace, else their first one, else a page on how to get one."""
    user = sessions.signed_in()
    db = get_db()
    last = accounts.last_workspace(db, user.user_id)
    if last and store_workspaces.get_member(db, last, user.user_id):
        return redirect(url_for("workspaces.items", ws_id=last))
    mine = store_workspaces.memberships(db, user.user_id)
    if mine:
        return redirect(url_for("workspaces.items", ws_id=mine[0].workspace_id))
    migrated = _migrated_membership(user.user_id)
    if migrated:
        return redirect(url_for("workspaces.items", ws_id=migrated))
    return render_template("main/home.html")


def _migrated_membership(user_id: str) -> str | None:
    """The migrated workspace, if the person is a member of it. The ByUser index is
    eventually consistent and may not show the membership the migration just copied; the
    member row itself, read consistently, does (one GetItem, only when the index showed no
    workspace at all)."""
    workspace_id = migration_runner.migrated_workspace_id()
    if workspace_id and store_workspaces.get_member(get_db(), workspace_id, user_id):
        return workspace_id
    return None


@bp.get("/healthz")
def healthz():
    """Whether the table answers and where the migration is: JSON, no sign-in, 503 when
    the table does not answer. One read per HEALTH_CACHE_SECONDS per process, however often
    the load balancer asks."""
    body, status = _health()
    return jsonify(body), status


# A load balancer asks every few seconds per target; each process reads at most this often.
HEALTH_CACHE_SECONDS = 5.0


@dataclass
class _HealthCache:
    answer: tuple[dict[str, str], int] | None = None
    read_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _health() -> tuple[dict[str, str], int]:
    cache: _HealthCache = current_app.extensions.setdefault("healthz", _HealthCache())
    with cache.lock:
        now = time.monotonic()
        if cache.answer is None or now - cache.read_at >= HEALTH_CACHE_SECONDS:
            cache.answer, cache.read_at = _read_health(), now
        return cache.answer


def _read_health() -> tuple[dict[str, str], int]:
    try:
        state = migration_state(get_db())
    except (ClientError, BotoCoreError) as exc:
        log.warning("health check: the table did not answer (%s)", type(exc).__name__)
        return {"status": "unavailable", "table": "unreachable"}, 503
    return {"status": "ok", "table": "ok", "migration": state}, 200
