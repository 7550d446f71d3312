"""Members and invites of a workspace: the list, role changes, removal and leaving, and
inviting people by e-mail.

Who may do what (``store.workspaces.may_*``): owners change any role and remove anyone;
admins manage members and admins but never touch an owner or make one, and invite members
only; members only leave. The last owner can be neither demoted nor removed nor leave.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from store import invites as store_invites
from store import workspaces as store_workspaces
from store.accounts import find_by_email
from store.db import get_db
from web import mail

from . import forms
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
            flash(f"{label} is now {_article(new_role)} {new_role}.", "success")
    return redirect(url_for(".members", ws_id=ws_id), 303)


def _article(role: str) -> str:
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
        if leaving:
            flash(f"You left {workspace.name}.", "success")
            return redirect(url_for(".workspaces"), 303)
        flash(f"Removed {target.email or 'the member'} from the workspace.", "success")
        return redirect(url_for(".members", ws_id=ws_id), 303)
    return render_template(
        "workspaces/member_remove.html", target=target, leaving=leaving, section="members"
    )


# --- invites ------------------------------------------------------------------------------------


class NoPublicUrl(Exception):
    """Production without PUBLIC_URL: there is no trustworthy origin to put in a link."""


def invite_link(token: str) -> str:
    """The link for an invite, built from ``PUBLIC_URL``; never from the request's Host
    header, except in development, where the server a developer runs is the origin."""
    path = url_for(".invite", token=token)
    public = current_app.config.get("PUBLIC_URL")
    if public:
        return public.rstrip("/") + path
    if current_app.config.get("APP_ENV") == "development":
        return url_for(".invite", token=token, _external=True)
    raise NoPublicUrl


def _invite_mail(link: str, workspace: str, inviter: str, role: str, days: int) -> str:
    return (
        f"{inviter} invited you to join “{workspace}” as {_article(role)} {role}.\n\n"
        f"Open this link to join (it works once, for this e-mail address, for {days} days):\n"
        f"{link}\n\n"
        "If you did not expect this, you can ignore this message.\n"
    )


@bp.route("/w/<ws_id>/invites/new", methods=["GET", "POST"])
@workspace_view("admin")
def new_invite(ws_id: str) -> Any:
    actor, workspace = page().member, page().workspace
    allowed = store_workspaces.invitable_roles(actor)
    form = forms.Form({"email": "", "role": "member"})
    if request.method == "POST":
        asked = request.form.get("role", "member")
        if asked in store_invites.INVITABLE_ROLES and asked not in allowed:
            abort(403, description="Only owners can invite admins.")
        form = forms.invite_form(request.form, allowed)
        db = get_db()
        if form.valid:
            account = find_by_email(db, form.values["email"])
            if account and store_workspaces.get_member(db, ws_id, account.user_id):
                form.errors["email"] = "This person is already a member of the workspace."
        if form.valid:
            public_url_ok = bool(
                current_app.config.get("PUBLIC_URL")
                or current_app.config.get("APP_ENV") == "development"
            )
            if not public_url_ok:
                form.errors["form"] = (
                    "Invites are switched off until the site's public address (PUBLIC_URL) is "
                    "configured. Ask whoever runs this site to set it."
                )
        if form.valid:
            lifetime = current_app.config["INVITE_LIFETIME"]
            invite, token, replaced = store_invites.create_invite(
                db,
                ws_id,
                email=form.values["email"],
                role=form.values["role"],
                invited_by=actor.user_id,
                lifetime_seconds=int(lifetime.total_seconds()),
            )
            link = invite_link(token)
            mailed = False
            if mail.configured(current_app.config):
                mailed = mail.send(
                    current_app.config,
                    to=invite.email,
                    subject=f"You are invited to {workspace.name}",
                    body=_invite_mail(link, workspace.name, actor.name, invite.role, lifetime.days),
                )
            response = current_app.make_response(
                render_template(
                    "workspaces/invite_created.html",
                    invite=invite,
                    link=None if mailed else link,
                    mail_failed=mail.configured(current_app.config) and not mailed,
                    replaced=replaced,
                    section="members",
                )
            )
            # The page shows a live token: keep it out of caches and Referer headers.
            response.headers["Referrer-Policy"] = "no-referrer"
            return response
    return render_template(
        "workspaces/invite_new.html", form=form, roles=allowed, section="members"
    ), (400 if form.errors else 200)


@bp.route("/w/<ws_id>/invites/<invite_id>/revoke", methods=["GET", "POST"])
@workspace_view("admin", extras={"invite": "invite_id"})
def revoke_invite(ws_id: str, invite_id: str) -> Any:
    invite: store_invites.Invite = extra_or_404("invite", "There is no such invite.")
    if request.method == "POST":
        if store_invites.revoke(get_db(), ws_id, invite_id):
            flash(f"Withdrew the invite for {invite.email}. Its link no longer works.", "success")
        else:
            flash("That invite was no longer pending (used, expired or withdrawn).", "info")
        return redirect(url_for(".members", ws_id=ws_id), 303)
    return render_template("workspaces/invite_revoke.html", invite=invite, section="members")
