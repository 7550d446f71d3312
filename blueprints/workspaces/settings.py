"""The settings page: a typed form for the known settings; owners and admins only."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from store import settings as store_settings
from store.db import get_db
from web.forms import Form

from . import forms
from .access import workspace_view
from .blueprint import bp


@bp.route("/w/<ws_id>/settings", methods=["GET", "POST"])
@workspace_view("admin")
def settings(ws_id: str) -> Any:
    current = store_settings.read_settings(get_db(), ws_id)
    locked = frozenset(current.locked)
    form = Form(dict(current.values))
    if request.method == "POST":
        form = forms.settings_form(request.form, locked)
        if form.valid:
            changes = forms.changed_settings(form, current)
            store_settings.save_settings(get_db(), ws_id, changes)
            flash("Settings saved." if changes else "Nothing changed.", "success")
            return redirect(url_for(".settings", ws_id=ws_id), 303)
    return render_template(
        "workspaces/settings.html",
        form=form,
        current=current,
        known=store_settings.KNOWN,
        zones=forms.timezone_choices(),
        section="settings",
    ), (400 if form.errors else 200)
