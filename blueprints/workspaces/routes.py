"""Workspace routes: "my workspaces" (the switcher) and creating one, entering a workspace.
The items, settings, members and invite pages live in their own modules; importing them here
attaches them to the one blueprint the app registers."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from store import accounts
from store import workspaces as store_workspaces
from store.db import get_db
from web import sessions
from web.forms import Form

from . import (  # noqa: F401 - they register views
    forms,
    invites,
    items,
    lifecycle,
    members,
    settings,
)
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
    return render_template("workspaces/list.html", memberships=mine, form=Form({"name": ""}))


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
