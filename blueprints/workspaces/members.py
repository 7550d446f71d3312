"""Members of a workspace: the list (with pending invites, for those who manage), role
changes, removal and leaving. Invite views live in ``invites.py``.

Who may do what (``store.workspaces.may_*``): owners change any role and remove anyone;
admins manage members and admins but never touch an owner or make one, and invite members
only; members only leave. The last owner can be neither demoted nor removed nor leave.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from store import invites as store_invites
from store import workspaces as store_workspaces
from store.db import get_db

from .access import extra_or_404, page, workspace_view
from .blueprint import bp

# The member the URL names (whose role changes, or who is removed), read with the page.
_TARGET = {"member": "user_id"}


def _target_or_404() -> store_workspaces.Member:
    target: store_workspaces.Member = extra_or_404(
        "member", "This person is not a member of the workspace."
    )
    return target


@bp.get("/w/<ws_id>/members")
@workspace_view("member")
def members(ws_id: str) -> Any:
    db = get_db()
    people = store_workspaces.list_members(db, ws_id)
    manages = page().member.rank >= store_workspaces.RANK["admin"]
    pending = store_invites.pending_invites(db, ws_id) if manages else []
    return render_template(
        "workspaces/members.html",
        people=people,
        pending=pending,
        manages=manages,
        roles=store_workspaces.ROLES,
        role_choices=_role_choices,
        may_remove=store_workspaces.may_remove,
        section="members",
    )


def _role_choices(person: store_workspaces.Member) -> list[str]:
    """The roles the signed-in person may give ``person`` (their current one included)."""
    return [
        role
        for role in reversed(store_workspaces.ROLES)
        if role == person.role or store_workspaces.may_change_role(page().member, person, role)
    ]


@bp.post("/w/<ws_id>/members/<user_id>/role")
@workspace_view("admin", extras=_TARGET)
def change_role(ws_id: str, user_id: str) -> Any:
    target = _target_or_404()
    new_role = request.form.get("role", "")
    if new_role not in store_workspaces.ROLES:
        abort(400, description="Choose one of the roles offered.")
    actor = page().member
    if not store_workspaces.may_change_role(actor, target, new_role):
        abort(403, description="Admins can't change an owner's role or make someone an owner.")
    label = target.email or "that member"
    try:
        store_workspaces.change_role(get_db(), page().workspace, user_id, target.role, new_role)
    except store_workspaces.LastOwner:
        flash(
            f"{label} is the only owner. Make someone else an owner first.",
            "error",
        )
    except store_workspaces.MembershipChanged:
        flash(f"{label}'s membership changed meanwhile; check the list and try again.", "error")
    else:
        if new_role != target.role:
            flash(f"{label} is now {article(new_role)} {new_role}.", "success")
    return redirect(url_for(".members", ws_id=ws_id), 303)


def article(role: str) -> str:
    return "an" if role[:1] in "aeiou" else "a"


@bp.route("/w/<ws_id>/members/<user_id>/remove", methods=["GET", "POST"])
@workspace_view("member", extras=_TARGET)
def remove_member(ws_id: str, user_id: str) -> Any:
    """Remove someone (owners, admins) or leave (anyone), after a confirmation."""
    target = _target_or_404()
    actor, workspace = page().member, page().workspace
    leaving = target.user_id == actor.user_id
    if not store_workspaces.may_remove(actor, target):
        abort(403, description="You can't remove this member.")
    if request.method == "POST":
        try:
            store_workspaces.remove_member(get_db(), workspace, user_id, target.role)
        except store_workspaces.LastOwner:
            flash(
                "You are the only owner, so you can't leave. Make someone else an owner first."
                if leaving
                else "That is the only owner; make someone else an owner first.",
                "error",
            )
            return redirect(url_for(".members", ws_id=ws_id), 303)
        except store_workspaces.MembershipChanged:
            flash("That membership changed meanwhile; check the list and try again.", "error")
            return redirect(url_for(".members", ws_id=ws_id), 303)
        # Their pending invites die with the membership (accepting one also checks).
        store_invites.withdraw_invites_of(get_db(), ws_id, user_id)
        if leaving:
            flash(f"You left {workspace.name}.", "success")
            return redirect(url_for(".workspaces"), 303)
        flash(f"Removed {target.email or 'the member'} from the workspace.", "success")
        return redirect(url_for(".members", ws_id=ws_id), 303)
    return render_template(
        "workspaces/member_remove.html", target=target, leaving=leaving, section="members"
    )
