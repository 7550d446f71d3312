"""Renaming and deleting a workspace (owners only), and the deletion's progress page.

The settings page links here: a rename form, and a "danger zone" whose delete page asks for
the workspace's name to be typed. The store does the one conditional write; what follows
(member rows' copies of the name, the partition's rows) runs in bounded slices
(``background.py``).
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from store import workspace_lifecycle as lifecycle
from store.db import get_db
from web import sessions
from web.forms import Form
from web.state import request_state

from . import background, forms
from .access import page, valid_id, workspace_view
from .blueprint import bp

NOT_OWNER = "Only the workspace's owners can do that."


@bp.route("/w/<ws_id>/rename", methods=["GET", "POST"])
@workspace_view("owner")
def rename(ws_id: str) -> Any:
    form = Form({"name": page().workspace.name})
    if request.method == "POST":
        form = forms.workspace_form(request.form)
        if form.valid and form.values["name"] == page().workspace.name:
            flash("That is already the workspace's name.", "info")
            return redirect(url_for(".settings", ws_id=ws_id), 303)
        if form.valid:
            try:
                lifecycle.rename(
                    get_db(), ws_id, form.values["name"], user_id=page().member.user_id
                )
            except lifecycle.NotAnOwner:
                abort(403, description=NOT_OWNER)
            except (lifecycle.Gone, lifecycle.NameMismatch):
                abort(404)
            background.continue_names(ws_id, first=True)
            flash(f"Renamed the workspace to {form.values['name']}.", "success")
            return redirect(url_for(".settings", ws_id=ws_id), 303)
    return render_template("workspaces/rename.html", form=form, section="settings"), (
        400 if form.errors else 200
    )


@bp.route("/w/<ws_id>/delete", methods=["GET", "POST"])
@workspace_view("owner")
def delete(ws_id: str) -> Any:
    """Delete after the owner types the name: everyone loses it at once, the rows follow."""
    form = Form({"confirm": ""})
    if request.method == "POST":
        form = Form({"confirm": request.form.get("confirm", "").strip()})
        if form.values["confirm"] != page().workspace.name:
            form.errors["confirm"] = "Type the workspace's name exactly as shown to delete it."
        elif _started(ws_id, form):
            background.continue_deletion(ws_id, first=True)
            return redirect(url_for(".deletion", ws_id=ws_id), 303)
    return render_template("workspaces/delete.html", form=form, section="settings"), (
        400 if form.errors else 200
    )


def _started(ws_id: str, form: Form) -> bool:
    """Mark the workspace deleted; False (with the form's error) when the name changed."""
    try:
        lifecycle.start_deletion(
            get_db(), ws_id, typed_name=form.values["confirm"], user_id=page().member.user_id
        )
    except lifecycle.NotAnOwner:
        abort(403, description=NOT_OWNER)
    except lifecycle.NameMismatch:
        form.errors["confirm"] = "The workspace was renamed meanwhile; type its new name."
        return False
    except lifecycle.Gone:
        return True  # another owner started it a moment ago: show the progress
    return True


@bp.get("/workspaces/deleted/<ws_id>")
@sessions.login_required
def deletion(ws_id: str) -> Any:
    """The deletion's progress, for the owner who started it. Like the migration's page,
    loading it moves a stalled deletion on (request mode, or after a crash)."""
    if not valid_id(ws_id):
        abort(404)
    state = lifecycle.deletion(get_db(), ws_id)
    if state is None or state.deleted_by != sessions.signed_in().user_id:
        abort(404)
    if not state.done:
        state = background.continue_deletion(ws_id) or state
    request_state().no_store = True
    return render_template(
        "workspaces/deletion.html", deletion=state, refresh=None if state.done else 2
    )
