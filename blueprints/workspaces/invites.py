"""Every invite view: creating one (and mailing or showing its link), withdrawing one, the
link's page, and accepting it.

A link carries a live token, so its pages are never cached and send no Referer. The link is
built from ``PUBLIC_URL``; without it (outside development) invites are switched off rather
than trusting the request's Host header.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from store import accounts, invite_limits
from store import invites as store_invites
from store import workspaces as store_workspaces
from store.db import get_db
from web import mail, sessions
from web.errors import render_error
from web.forms import Form
from web.state import request_state

from . import forms
from .access import extra_or_404, page, workspace_view
from .blueprint import bp
from .members import article

NO_PUBLIC_URL = (
    "Invites are switched off until the site's public address (PUBLIC_URL) is configured. "
    "Ask whoever runs this site to set it."
)


# Fixed: a workspace or inviter name is chosen by whoever invites, and would reach a
# stranger's inbox in our name; the body names them, as plain text.
INVITE_SUBJECT = "You have been invited to a team workspace"


class NoPublicUrl(Exception):
    """Production without PUBLIC_URL: there is no trustworthy origin to put in a link."""


def _link_origin() -> str | None:
    """Where invite links point: ``PUBLIC_URL``; in development only, the server a developer
    runs (the request's own origin); otherwise None, and no link can be made."""
    public = current_app.config.get("PUBLIC_URL")
    if public:
        return str(public).rstrip("/")
    if current_app.config.get("APP_ENV") == "development":
        return request.host_url.rstrip("/")
    return None


def invite_link(token: str) -> str:
    origin = _link_origin()
    if origin is None:
        raise NoPublicUrl
    return origin + url_for(".invite", token=token)


def _invite_mail(link: str, workspace: str, inviter: str, role: str, days: int) -> str:
    return (
        f"{inviter} invited you to join “{workspace}” as {article(role)} {role}.\n\n"
        f"Open this link to join (it works once, for this e-mail address, for {days} days):\n"
        f"{link}\n\n"
        "If you did not expect this, you can ignore this message.\n"
    )


def _check_invitee(form: Form, ws_id: str) -> None:
    """Form errors for what the fields alone cannot tell: a member already, or no link."""
    if not form.valid:
        return
    db = get_db()
    account = accounts.find_by_email(db, form.values["email"])
    if account and store_workspaces.get_member(db, ws_id, account.user_id):
        form.errors["email"] = "This person is already a member of the workspace."
    elif _link_origin() is None:
        form.errors["form"] = NO_PUBLIC_URL


@bp.route("/w/<ws_id>/invites/new", methods=["GET", "POST"])
@workspace_view("admin")
def new_invite(ws_id: str) -> Any:
    if refusal := unconfirmed_refusal("invite anyone"):
        abort(403, description=refusal)
    allowed = store_workspaces.invitable_roles(page().member)
    form = Form({"email": "", "role": "member"})
    if request.method == "POST":
        asked = request.form.get("role", "member")
        if asked in store_invites.INVITABLE_ROLES and asked not in allowed:
            abort(403, description="Only owners can invite admins.")
        form = forms.invite_form(request.form, allowed)
        _check_invitee(form, ws_id)
        if form.valid:
            return _create_and_send(ws_id, form)
    return render_template(
        "workspaces/invite_new.html", form=form, roles=allowed, section="members"
    ), (400 if form.errors else 200)


def _create_and_send(ws_id: str, form: Form) -> Any:
    """Create the invite, mail its link when mail is set up, and show the link otherwise."""
    actor, workspace = page().member, page().workspace
    config = current_app.config
    lifetime = config["INVITE_LIFETIME"]
    try:
        invite, token, replaced = store_invites.create_invite(
            get_db(),
            ws_id,
            email=form.values["email"],
            role=form.values["role"],
            invited_by=actor.user_id,
            lifetime_seconds=int(lifetime.total_seconds()),
            limits=invite_limits.limits_for(config, ws_id, actor.user_id),
            max_pending=config["INVITE_MAX_PENDING"],
        )
    except invite_limits.RateLimited as limited:
        return _limited_page(limited, form.values["email"])
    except store_invites.TooManyPending:
        form.errors["form"] = (
            f"This workspace already has {config['INVITE_MAX_PENDING']} pending invites, the "
            "most it can hold. Withdraw some on the members page, or wait until they are "
            "accepted or expire."
        )
        return render_template(
            "workspaces/invite_new.html",
            form=form,
            roles=store_workspaces.invitable_roles(actor),
            section="members",
        ), 409
    link = invite_link(token)
    # Without SMTP the message still goes to the outbox (development's /dev/mail); only an
    # SMTP queue is worth telling the inviter about.
    handed_over = mail.send(
        config,
        to=invite.email,
        subject=INVITE_SUBJECT,
        body=_invite_mail(link, workspace.name, actor.name, invite.role, lifetime.days),
    )
    queued = mail.configured(config) and handed_over
    # Mail leaves in the background now, so the page cannot know it arrived: the inviter
    # always gets the link too, and "queued" is all we claim.
    response = current_app.make_response(
        render_template(
            "workspaces/invite_created.html",
            invite=invite,
            link=link,
            queued=queued,
            mail_failed=mail.configured(config) and not queued,
            replaced=replaced,
            section="members",
        )
    )
    # The page shows a live token: keep it out of caches and Referer headers.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _limited_page(limited: invite_limits.RateLimited, email: str) -> Any:
    """429 with Retry-After: how long until the used-up window ends, in words too."""
    minutes = max(1, round(limited.retry_after / 60))
    wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
    if minutes >= 90:
        hours = round(minutes / 60)
        wait = f"about {hours} hour{'s' if hours != 1 else ''}"
    body = render_template(
        "workspaces/invite_limited.html",
        scope=limited.limit.scope,
        email=email,
        wait=wait,
        section="members",
    )
    return body, 429, {"Retry-After": str(limited.retry_after)}


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


def unconfirmed_refusal(action: str) -> str | None:
    """Why an account whose address is not confirmed cannot join or invite, or None."""
    account = sessions.current_account()
    if account is None or account.confirmed:
        return None
    return (
        f"Confirm your e-mail address before you {action}: open the link we sent to "
        f"{account.email}, or ask for a new one from the notice at the top."
    )


# --- the link -------------------------------------------------------------------------------------


def _private(response: Any) -> Any:
    """An invite page carries a live token in its URL: no caching, no Referer."""
    request_state().no_store = True
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _private_page(template: str, status: int, **context: Any) -> Any:
    response = current_app.make_response((render_template(template, **context), status))
    return _private(response)


@bp.get("/invite/<token>")
def invite(token: str) -> Any:
    """What the link is for (workspace, who invited), and how to join."""
    db = get_db()
    try:
        found = store_invites.find(db, token)
    except store_invites.InviterGone:
        return _private_page("invites/inviter_gone.html", 410)
    except store_invites.InviteUnusable:
        return _private_page("invites/unusable.html", 404)
    user = sessions.current_user()
    member = None
    if user is not None:
        member = store_workspaces.get_member(db, found.workspace.workspace_id, user.user_id)
    wrong_account = (
        user is not None
        and member is None
        and not accounts.same_email(user.email, found.invite.email)
    )
    account = sessions.current_account()
    return _private_page(
        "invites/show.html",
        200,
        unconfirmed=account is not None and not account.confirmed,
        found=found,
        user=user,
        member=member,
        wrong_account=wrong_account,
        token=token,
    )


@bp.post("/invite/<token>", endpoint="accept_invite")
def accept_invite(token: str) -> Any:
    """Join: one transaction, so two accepts at once make one membership."""
    user = sessions.current_user()
    if user is None:
        return _private(redirect(url_for("auth.login", next=url_for(".invite", token=token)), 303))
    if refusal := unconfirmed_refusal("join a workspace"):
        return _private(current_app.make_response(render_error(403, refusal)))
    db = get_db()
    try:
        found = store_invites.accept(db, token, user_id=user.user_id, email=user.email)
    except store_invites.InviterGone:
        return _private_page("invites/inviter_gone.html", 410)
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
