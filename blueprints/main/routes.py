"""The start page and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, url_for

from blueprints.migration import runner as migration_runner
from store import accounts, schema
from store import workspaces as store_workspaces
from store.db import get_db
from web import sessions

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
    status = schema.table_status(get_db())
    if status is None:
        return jsonify(status="unavailable", table="unreachable"), 503
    return jsonify(status="ok", table=status)
