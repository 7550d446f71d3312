"""The start page and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, url_for

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
    return render_template("main/home.html")


@bp.get("/healthz")
def healthz():
    status = schema.table_status(get_db())
    if status is None:
        return jsonify(status="unavailable", table="unreachable"), 503
    return jsonify(status="ok", table=status)
