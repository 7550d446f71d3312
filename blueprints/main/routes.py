"""The start page and the health check."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from flask import Blueprint, jsonify, render_template

import sessions
from store.db import get_db

bp = Blueprint("main", __name__)


@bp.get("/")
@sessions.login_required
def index():
    return render_template("main/home.html")


@bp.get("/healthz")
def healthz():
    db = get_db()
    try:
        status = db.client.describe_table(TableName=db.table)["Table"]["TableStatus"]
    except (ClientError, BotoCoreError):
        return jsonify(status="unavailable", table="unreachable"), 503
    return jsonify(status="ok", table=status.lower())
