"""The migration gate, the "preparing your workspace" page and the owners' audit page."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from store import accounts, workspaces
from store.db import get_db
from store.migration.claim import STATE_WAITING, Claim, read_claim
from store.migration.flag import finish_without_data, read_flag
from store.migration.kept import read_kept
from store.migration.v1 import has_v1_data
from web import sessions
from web.security import safe_next

from . import runner

bp = Blueprint("migration", __name__)
REFRESH_SECONDS = 2
# Kept-back rows listed on the audit page; the rest are counted (`migration status` lists too).
SHOWN_KEPT = 50


@bp.before_app_request
def gate():
    """Before any signed-in page: until the flag exists, send people to the preparing page."""
    if runner.state().flag_seen or request.blueprint == bp.name:
        return None
    if not sessions.is_signed_in_page(sessions.requested_view()):
        return None
    user = sessions.current_user()
    if user is None or runner.flag_seen():
        return None
    db = get_db()
    claim = read_claim(db)
    if claim is None and not has_v1_data(db):
        # A fresh install: nothing to copy, so nobody ever sees the preparing page.
        finish_without_data(db, user.user_id)
        runner.state().flag_seen = True
        return None
    runner.kick(user.user_id, claim)
    target = request.full_path if request.query_string else request.path
    if request.method != "GET":
        target = "/"
    return redirect(url_for("migration.preparing", next=safe_next(target)), 303)


def _progress(claim: Claim | None) -> dict[str, object]:
    if claim is None:
        return {"phase": "starting", "items": 0, "itemsTotal": None, "retrying": False}
    return {
        "phase": claim.phase,
        "items": claim.items_copied,
        # An estimate: show it only while the copy has not overtaken it.
        "itemsTotal": claim.items_total
        if claim.items_total and claim.items_total >= claim.items_copied
        else None,
        "settings": claim.settings_copied,
        "members": claim.members_copied,
        "retrying": claim.state == STATE_WAITING or bool(claim.last_error),
        "message": claim.last_error,
    }


@bp.get("/preparing")
@sessions.login_required
def preparing():
    target = safe_next(request.args.get("next"))
    if runner.flag_seen():
        return redirect(target)
    claim = read_claim(get_db())
    runner.kick(sessions.signed_in().user_id, claim)
    progress = _progress(claim)
    status = 503 if progress["retrying"] else 200
    response = current_app.make_response(
        (
            render_template(
                "migration/preparing.html",
                progress=progress,
                next=target,
                refresh=REFRESH_SECONDS,
            ),
            status,
        )
    )
    if progress["retrying"]:
        response.headers["Retry-After"] = str(REFRESH_SECONDS)
    return response


@bp.get("/preparing/progress")
@sessions.login_required
def progress():
    target = safe_next(request.args.get("next"))
    if runner.flag_seen():
        return jsonify(done=True, next=target)
    claim = read_claim(get_db())
    runner.kick(sessions.signed_in().user_id, claim)
    return jsonify(done=False, next=target, **_progress(claim))


@bp.get("/migration")
@sessions.login_required
def audit():
    """Who migrated, when, how long it took and what was copied: for the workspace's owners."""
    user = sessions.signed_in()
    db = get_db()
    flag = read_flag(db)
    if flag is None or flag.workspace_id is None:
        abort(404)
    membership = workspaces.get_member(db, flag.workspace_id, user.user_id)
    if membership is None or membership.role != "owner":
        abort(
            403, description="Only owners of the migrated workspace can see the migration record."
        )
    by = accounts.get_account(db, flag.migrated_by)
    kept, kept_total = read_kept(db, limit=SHOWN_KEPT) if flag.kept_back else ([], 0)
    return render_template(
        "migration/audit.html",
        flag=flag,
        migrated_by=by,
        workspace=workspaces.get_workspace(db, flag.workspace_id),
        kept=kept,
        kept_total=kept_total,
    )
