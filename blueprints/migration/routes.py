"""The migration gate, the "preparing your workspace" page and the owners' audit page."""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from store import accounts, workspaces
from store.batch import BudgetExceeded
from store.db import get_db
from store.migration.claim import STATE_FAILED, Claim, read_claim
from store.migration.conflicts import read_conflicts
from store.migration.flag import Flag, finish_without_data, read_flag
from store.migration.kept import SHOWN_KEPT, read_kept
from store.migration.v1 import has_v1_data
from web import sessions
from web.security import safe_next

from . import latesync, runner

bp = Blueprint("migration", __name__)
log = logging.getLogger(__name__)
# DynamoDB not answering the pages' own reads (throttled, unreachable, or keys of a batch
# read still unprocessed when its budget ran out): shown as "retrying".
DYNAMODB_TROUBLE = (ClientError, BotoCoreError, BudgetExceeded)
REFRESH_SECONDS = 2
# The failed page reloads slowly, so people land once the operator has fixed the cause.
FAILED_REFRESH_SECONDS = 30


@bp.before_app_request
def gate():
    """Before any signed-in page: until the flag exists, send people to the preparing page.
    After it, late v1 writes are applied by themselves (``latesync``: cheap unless due)."""
    if runner.state().flag_seen:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        latesync.tick(lambda: runner.mode(app))
        return None
    if request.blueprint == bp.name:
        return None
    if not sessions.is_signed_in_page(sessions.requested_view()):
        return None
    user = sessions.current_user()
    target = request.full_path if request.query_string else request.path
    if request.method != "GET":
        target = "/"
    try:
        if user is None:
            return None
        claim, v1_member = runner.gate_reading(user.user_id)
        if runner.state().flag_seen:
            return None
        db = get_db()
        if claim is None and not v1_member and not has_v1_data(db):
            # A fresh install: nothing to copy, so nobody ever sees the preparing page.
            runner.state().flag = finish_without_data(db, user.user_id)
            return None
        flag = runner.advance(user.user_id, claim, first=True).flag
    except DYNAMODB_TROUBLE as exc:
        # The preparing page says "retrying" and carries on by itself; never a 500 here.
        log.warning("migration gate: DynamoDB did not answer (%s)", type(exc).__name__)
        flag = None
    if flag is not None:
        # The copy finished inside this request: on to the page asked for, with a note.
        flash(prepared_note(flag), "success")
        return None
    return redirect(url_for("migration.preparing", next=safe_next(target)), 303)


def prepared_note(flag: Flag) -> str:
    def count(number: int, noun: str) -> str:
        return f"{number} {noun}" if number != 1 else f"1 {noun.removesuffix('s')}"

    return (
        f"Your workspace was just prepared: {count(flag.items, 'items')}, "
        f"{count(flag.settings, 'settings')} and {count(flag.members, 'members')} moved."
    )


def _advance(user_id: str, claim: Claim | None) -> tuple[bool, Claim | None]:
    """A preparing load or progress poll moves the copy on when nobody else is (a slice in
    request mode, a background run in thread mode): whether it is done, and the claim to show."""
    step = runner.advance(user_id, claim)
    if step.flag is not None:
        return True, claim
    if step.sliced:
        # Show what the slice published, not what was read before it.
        claim = read_claim(get_db())
    return False, claim


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
        # A claim handed over between slices waits without an error: that is not a retry.
        # (The error's text is never sent: it is the operator's, `migration status` shows it.)
        "retrying": bool(claim.last_error),
    }


# What the page shows when DynamoDB itself does not answer the page's own reads.
UNREACHABLE: dict[str, object] = {"phase": "", "items": 0, "itemsTotal": None, "retrying": True}


def _failed_page(target: str) -> Response:
    """People are told the workspace cannot be prepared yet, and nothing more: the reason is
    the operator's (log, ``migration status``), never DynamoDB's words or keys on a page."""
    response = current_app.make_response(
        (
            render_template("migration/failed.html", next=target, refresh=FAILED_REFRESH_SECONDS),
            503,
        )
    )
    response.headers["Retry-After"] = str(FAILED_REFRESH_SECONDS)
    return response


# The preparing page and its progress poll know the person from the signed cookie alone (no
# revocation read: they show no team data), and read the claim and the flag through this
# process's caches, so however many tabs poll, DynamoDB sees a bounded number of calls.


@bp.get("/preparing")
def preparing():
    person = sessions.peek_user()
    if person is None:
        return sessions.redirect_to_login()
    target = safe_next(request.args.get("next"))
    try:
        if runner.flag_seen():
            return redirect(target)
        claim = runner.current_claim()
        if claim is not None and claim.state == STATE_FAILED:
            return _failed_page(target)
        done, claim = _advance(person.user_id, claim)
    except DYNAMODB_TROUBLE as exc:
        log.warning("preparing page: DynamoDB did not answer (%s)", type(exc).__name__)
        return _preparing_page(target, UNREACHABLE)
    if done:
        return redirect(target)
    return _preparing_page(target, _progress(claim))


def _preparing_page(target: str, progress: dict[str, object]) -> Response:
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
def progress():
    person = sessions.peek_user()
    if person is None:
        return sessions.redirect_to_login()
    target = safe_next(request.args.get("next"))
    try:
        if runner.flag_seen():
            return jsonify(done=True, next=target)
        claim = runner.current_claim()
        if claim is not None and claim.state == STATE_FAILED:
            # Not OK: the page's script reloads, and the reload shows the failed page.
            response = jsonify(done=False, failed=True, next=target)
            response.status_code = 503
            response.headers["Retry-After"] = str(FAILED_REFRESH_SECONDS)
            return response
        done, claim = _advance(person.user_id, claim)
    except DYNAMODB_TROUBLE as exc:
        log.warning("progress poll: DynamoDB did not answer (%s)", type(exc).__name__)
        response = jsonify(done=False, next=target, **UNREACHABLE)
        response.status_code = 503
        response.headers["Retry-After"] = str(REFRESH_SECONDS)
        return response
    if done:
        return jsonify(done=True, next=target)
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
    conflicts, conflicts_total = read_conflicts(db, limit=SHOWN_KEPT)
    return render_template(
        "migration/audit.html",
        flag=flag,
        migrated_by=by,
        workspace=workspaces.get_workspace(db, flag.workspace_id),
        kept=kept,
        kept_total=kept_total,
        conflicts=conflicts,
        conflicts_total=conflicts_total,
    )
