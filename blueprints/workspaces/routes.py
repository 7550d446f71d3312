"""Workspace routes: "my workspaces" (the switcher) and creating one, entering a workspace,
and invite links. The items, settings and members pages live in their own modules; importing
them here attaches them to the one blueprint the app registers."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for

from store import accounts
from store import invites as store_invites
from store import workspaces as store_workspaces
from store.db import get_db
from web import sessions
from web.state import request_state

from . import forms, items, members, settings  # noqa: F401 - they register their views
from .access import SIGNED_IN_USER, page, workspace_view
from .blueprint import bp

__all__ = ["bp"]


@bp.get("/workspaces")
@sessions.login_required
def workspaces() -> Any:
    """Every workspace the person belongs to (one Query on the ByUser index), and a form to
    create one. The nav links here instead of listing workspaces on every page, so the items
    page keeps to its two DynamoDB calls."""
    user = sessions.signed_in()
    mine = store_workspaces.memberships(get_db(), user.user_id)
    return render_template("workspaces/list.html", memberships=mine, form=forms.Form({"name": ""}))


@bp.post("/workspaces")
@sessions.login_required
def create_workspace() -> Any:
    user = sessions.signed_in()
    form = forms.workspace_form(request.form)
    db = get_db()
    if not form.valid:
        mine = store_workspaces.memberships(db, user.user_id)
        return render_template("workspaces/list.html", memberships=mine, form=form), 400
    workspace = store_workspaces.create_workspace(db, form.values["name"], user.user_id, user.email)
    accounts.remember_workspace(db, user.user_id, workspace.workspace_id)
    flash(f"Created {workspace.name}. You are its owner.", "success")
    return redirect(url_for(".items", ws_id=workspace.workspace_id), 303)


@bp.post("/w/<ws_id>/open")
@workspace_view("member", extras={"prefs": SIGNED_IN_USER})
def enter(ws_id: str) -> Any:
    """Switch to a workspace: remember it as the person's last one (the start page opens
    it next time; a write only when it changed), then show its items. A POST, because it
    writes: no GET changes anything."""
    if page().extras["prefs"] != ws_id:
        accounts.remember_workspace(get_db(), page().member.user_id, ws_id)
    return redirect(url_for(".items", ws_id=ws_id), 303)


# --- invite links -------------------------------------------------------------------------------


def _private(response: Any) -> Any:
    """An invite page carries a live token in its URL: no caching, no Referer."""
    request_state().no_store = True
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/invite/<token>")
def invite(token: str) -> Any:
    """What the link is for (workspace, who invited), and how to join."""
    db = get_db()
    try:
        found = store_invites.find(db, token)
    except store_invites.InviteUnusable:
        return _private_page("invites/unusable.html", 404)
    user = sessions.current_user()
    member = None
    if user is not None:
        member = store_workspaces.get_member(db, found.workspace.workspace_id, user.user_id)
    wrong_account = (
        user is not None
        and member is None
        and accounts.normalise_email(user.email) != found.invite.email
    )
    return _private_page(
        "invites/show.html",
        200,
        found=found,
        user=user,
        member=member,
        wrong_account=wrong_account,
        token=token,
    )


def _private_page(template: str, status: int, **context: Any) -> Any:
    response = current_app.make_response((render_template(template, **context), status))
    return _private(response)


@bp.post("/invite/<token>", endpoint="accept_invite")
def accept_invite(token: str) -> Any:
    """Join: one transaction, so two accepts at once make one membership."""
    user = sessions.current_user()
    if user is None:
        return _private(redirect(url_for("auth.login", next=url_for(".invite", token=token)), 303))
    db = get_db()
    try:
        found = store_invites.accept(db, token, user_id=user.user_id, email=user.email)
    except store_invites.InviteUnusable:
        return _private_page("invites/unusable.html", 404)
    except store_invites.WrongAccount:
        return _private_page("invites/wrong_account.html", 403, user=user, token=token)
    except store_invites.AlreadyMember as exc:
        flash("You are already a member of this workspace.", "info")
        return _private(redirect(url_for(".items", ws_id=exc.workspace_id), 303))
    accounts.remember_workspace(db, user.user_id, found.workspace.workspace_id)
    flash(f"Welcome to {found.workspace.name}!", "success")
    return _private(redirect(url_for(".items", ws_id=found.workspace.workspace_id), 303))


# Joining needs an account (the GET page works signed out).
sessions.mark_signed_in_page(accept_invite)
