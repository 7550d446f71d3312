"""Items pages: the list (newest first, filtered, paginated), create, view, edit, mark done,
delete after a confirmation."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from store import items as store_items
from store import settings as store_settings
from store.accounts import get_account
from store.db import get_db
from web.forms import Form
from web.security import safe_next

from . import cursor, forms
from .access import extra_or_404, not_found, page, workspace_view
from .blueprint import bp

MAX_TAG_FILTER = forms.MAX_TAG
GONE = "This item does not exist; it may have been deleted."


# The item the URL names, read with the page.
_ITEM = {"item": "item_id"}


def _item_or_404() -> store_items.Item:
    item: store_items.Item = extra_or_404("item", GONE)
    return item


def _filters() -> tuple[str | None, str | None]:
    status = request.args.get("status", "")
    tag = " ".join(request.args.get("tag", "").split())[:MAX_TAG_FILTER]
    return (status if status in store_items.STATUSES else None), (tag or None)


@bp.get("/w/<ws_id>/items")
@workspace_view("member", settings=("itemsPerPage", "timezone"))
def items(ws_id: str) -> Any:
    """The list: one BatchGetItem (session, workspace, membership, settings), one Query."""
    status, tag = _filters()
    start_key = None
    token = request.args.get("cursor")
    if token:
        try:
            start_key = cursor.decode(token, ws_id, status, tag)
        except cursor.BadCursor:
            return render_template("workspaces/bad_cursor.html", section="items"), 400
    settings = page().settings
    listing = store_items.list_items(
        get_db(),
        ws_id,
        per_page=store_settings.page_size(settings),
        start_key=start_key,
        status=status,
        tag=tag,
    )
    next_cursor = cursor.encode(listing.next_key, ws_id, status, tag) if listing.next_key else None
    return render_template(
        "workspaces/items.html",
        page=listing,
        status=status,
        tag=tag,
        next_cursor=next_cursor,
        first_page=not token,
        timezone=settings.values["timezone"],
        section="items",
    )


@bp.route("/w/<ws_id>/items/new", methods=["GET", "POST"])
@workspace_view("member", settings=("defaultStatus",))
def new_item(ws_id: str) -> Any:
    form = Form(
        {"title": "", "notes": "", "tags": "", "status": page().settings.values["defaultStatus"]}
    )
    if request.method == "POST":
        form = forms.item_form(request.form)
        if form.valid:
            try:
                item = store_items.create_item(
                    get_db(), ws_id, forms.item_fields(form), page().member.user_id
                )
            except store_items.ItemTooLarge as exc:
                form.errors["notes"] = _too_large(exc)
            else:
                flash(f"Added “{item.title}”.", "success")
                return redirect(url_for(".items", ws_id=ws_id), 303)
    return render_template("workspaces/item_form.html", form=form, item=None, section="items"), (
        400 if form.errors else 200
    )


def _too_large(exc: store_items.ItemTooLarge) -> str:
    return (
        f"With these notes the item would take about {exc.size // 1024} KB, and DynamoDB "
        f"keeps at most {store_items.MAX_ITEM_BYTES // 1024} KB per item (the other data "
        "stored with this item counts too). Shorten the notes."
    )


@bp.get("/w/<ws_id>/items/<item_id>")
@workspace_view("member", settings=("timezone",), extras=_ITEM)
def item(ws_id: str, item_id: str) -> Any:
    found = _item_or_404()
    creator = get_account(get_db(), found.created_by) if found.created_by else None
    return render_template(
        "workspaces/item.html",
        item=found,
        creator=creator,
        timezone=page().settings.values["timezone"],
        section="items",
    )


@bp.route("/w/<ws_id>/items/<item_id>/edit", methods=["GET", "POST"])
@workspace_view("member", extras=_ITEM)
def edit_item(ws_id: str, item_id: str) -> Any:
    found = _item_or_404()
    form = Form(
        {
            "title": found.title,
            "notes": found.notes,
            "tags": ", ".join(found.tags),
            "status": found.status,
        }
    )
    seen = found.updated_at
    conflict = False
    if request.method == "POST":
        form = forms.item_form(request.form, locked=found.locked)
        seen = request.form.get("seen", "")
        if form.valid:
            try:
                if seen != found.updated_at:
                    raise store_items.ItemChanged
                saved = store_items.update_item(get_db(), found, forms.item_fields(form))
            except store_items.ItemGone:
                flash("That item was deleted while you were editing; nothing was saved.", "error")
                return redirect(url_for(".items", ws_id=ws_id), 303)
            except store_items.ItemChanged:
                conflict = True
                seen = (store_items.get_item(get_db(), ws_id, item_id) or found).updated_at
            except store_items.ItemTooLarge as exc:
                form.errors["notes"] = _too_large(exc)
            else:
                flash(f"Saved “{saved.title}”.", "success")
                return redirect(url_for(".item", ws_id=ws_id, item_id=item_id), 303)
    status = 409 if conflict else (400 if form.errors else 200)
    return render_template(
        "workspaces/item_form.html",
        form=form,
        item=found,
        seen=seen,
        conflict=conflict,
        section="items",
    ), status


@bp.post("/w/<ws_id>/items/<item_id>/status")
@workspace_view("member")
def item_status(ws_id: str, item_id: str) -> Any:
    status = request.form.get("status", "")
    if status not in store_items.STATUSES:
        abort(400, description="Choose open or done.")
    try:
        store_items.set_status(get_db(), ws_id, item_id, status)
    except store_items.ItemGone:
        not_found(GONE)
    flash("Marked as done." if status == "done" else "Reopened.", "success")
    back = safe_next(request.form.get("next"), url_for(".items", ws_id=ws_id))
    if not back.startswith(f"/w/{ws_id}/"):
        back = url_for(".items", ws_id=ws_id)
    return redirect(back, 303)


@bp.route("/w/<ws_id>/items/<item_id>/delete", methods=["GET", "POST"])
@workspace_view("member", extras=_ITEM)
def delete_item(ws_id: str, item_id: str) -> Any:
    found = _item_or_404()
    if request.method == "POST":
        if not store_items.delete_item(get_db(), ws_id, item_id):
            not_found(GONE)
        flash(f"Deleted “{found.title}”.", "success")
        return redirect(url_for(".items", ws_id=ws_id), 303)
    return render_template("workspaces/item_delete.html", item=found, section="items")
