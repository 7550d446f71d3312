"""The start page and the health check."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from flask import Blueprint, jsonify, redirect, render_template, url_for

from store import accounts
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
    db = get_db()
    try:
        status = db.client.describe_table(TableName=db.table)["Table"]["TableStatus"]
    except (ClientError, BotoCoreError):
        return jsonify(status="unavailable", table="unreachable"), 503
    return jsonify(status="ok", table=status.lower())
