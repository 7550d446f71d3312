"""``/account``: a signed-in person's own page. Change the name, the password (current one
required; other sessions signed out), the e-mail address (the new one is confirmed by mail
first); list the sessions and sign out one or all others; delete the account."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for

from blueprints.auth import passwords
from store import account_changes, account_removal, account_tokens, accounts, limits
from store import sessions as store_sessions
from store.db import get_db
from web import sessions
from web.forms import Form
from web.state import request_state

from . import forms, mailing
from .account_blueprint import bp

WRONG_PASSWORD = "That is not your current password."  # noqa: S105 - a message


def _account() -> accounts.Account:
    account = sessions.current_account()
    if account is None:  # login_required confirmed the session and read the profile
        raise sessions.SignedOut
    return account


def _page(status: int = 200, **forms_by_name: Form) -> Any:
    account = _account()
    claims = request_state().claims or {}
    context = {
        "name_form": Form({"name": account.name}),
        "email_form": Form({"email": ""}),
        "password_form": Form({}),
        **forms_by_name,
    }
    return render_template(
        "auth/account.html",
        account=account,
        sessions=store_sessions.list_sessions(get_db(), account),
        current_session=claims.get("sid"),
        **context,
    ), status


def _current_password_ok(account: accounts.Account, form: Form) -> bool:
    """Whether the typed current password is right. Counted per account (store/limits.py),
    so a stolen session cannot be used to guess the password at leisure."""
    typed = request.form.get("current_password", "")
    method = current_app.config["PASSWORD_HASH_METHOD"]
    window = int(current_app.config["CURRENT_PASSWORD_WINDOW"].total_seconds())
    wait = limits.take(
        get_db(),
        "currentpassword",
        account.user_id,
        limit=current_app.config["CURRENT_PASSWORD_MAX_FAILURES"],
        window_seconds=window,
    )
    if wait:
        form.errors["current_password"] = (
            f"Too many attempts. Try again in {wait // 60 + 1} minutes."
        )
        return False
    if typed and len(typed) <= passwords.MAX_LENGTH:
        if passwords.verify(account.password_hash, typed, method):
            return True
    form.errors["current_password"] = WRONG_PASSWORD
    return False


@bp.get("/account")
@sessions.login_required
def account_page() -> Any:
    return _page()


@bp.post("/account/name")
@sessions.login_required
def change_name() -> Any:
    account = _account()
    form = forms.name_only(request.form)
    if not form.valid:
        return _page(400, name_form=form)
    account_changes.change_name(get_db(), account.user_id, form.values["name"])
    response = redirect(url_for(".account_page"), 303)
    sessions.reissue(response, _with(account, name=form.values["name"]))
    flash("Your name is changed.", "success")
    return response


def _with(account: accounts.Account, **changes: Any) -> accounts.Account:
    return replace(account, **changes)


@bp.post("/account/password")
@sessions.login_required
def change_password() -> Any:
    account = _account()
    form = forms.new_password(request.form, field="new_password")
    if not _current_password_ok(account, form) or not form.valid:
        return _page(400, password_form=form)
    method = current_app.config["PASSWORD_HASH_METHOD"]
    new_hash = passwords.hash_password(form.values["new_password"], method)
    db = get_db()
    generation = account_changes.change_password(
        db, account.user_id, account.password_hash, new_hash
    )
    if generation is None:
        form.errors["form"] = "Your password was changed elsewhere meanwhile. Reload and retry."
        return _page(409, password_form=form)
    response = redirect(url_for(".account_page"), 303)
    _keep_this_session_only(
        response, _with(account, password_hash=new_hash, session_generation=generation)
    )
    mailing.notice(account.email, "The password of your account was changed on its account page.")
    flash("Your password is changed. Your other sessions were signed out.", "success")
    return response


def _keep_this_session_only(response: Any, account: accounts.Account) -> None:
    """The account's generation moved on: this session gets a token of the new one, the
    others' rows go."""
    sessions.reissue(response, account)
    claims = request_state().claims or {}
    store_sessions.keep_only(
        get_db(),
        account.user_id,
        store_sessions.SessionRef(
            claims.get("sid", ""), account.user_id, account.session_generation
        ),
    )


@bp.post("/account/email")
@sessions.login_required
def change_email() -> Any:
    account = _account()
    form = forms.email_only(request.form)
    if not _current_password_ok(account, form) or not form.valid:
        return _page(400, email_form=form)
    new_email = accounts.normalise_email(form.values["email"])
    db = get_db()
    if new_email == account.email:
        form.errors["email"] = "That is already your address."
    elif accounts.find_by_email(db, new_email) is not None:
        form.errors["email"] = "This address cannot be used for your account."
    elif wait := mailing.wait_before_mailing("emailchange", account.user_id):
        form.errors["email"] = f"Too many requests. Try again in {wait // 60 + 1} minutes."
    if not form.valid:
        return _page(400, email_form=form)
    token = account_tokens.issue(
        db,
        account_tokens.EMAIL_CHANGE,
        user_id=account.user_id,
        email=new_email,
        lifetime_seconds=int(current_app.config["EMAIL_CHANGE_LIFETIME"].total_seconds()),
    )
    mailing.email_change(new_email, token)
    flash(
        f"We sent a link to {new_email}. Your address changes when you open it; until then "
        f"you keep signing in with {account.email}.",
        "success",
    )
    return redirect(url_for(".account_page"), 303)


@bp.post("/account/sessions/<session_id>/sign-out")
@sessions.login_required
def sign_out_session(session_id: str) -> Any:
    account = _account()
    claims = request_state().claims or {}
    if session_id == claims.get("sid"):
        response = redirect(url_for("auth.login"), 303)
        sessions.sign_out(response)
        flash("You have signed out.", "info")
        return response
    # That session cannot outlive a session signed in now: remember its revocation as long.
    max_age = current_app.config["JWT_SESSION_MAX_AGE"].total_seconds()
    until = int(time.time() + max_age) + 60
    if store_sessions.sign_out_one(get_db(), account.user_id, session_id, until):
        flash("That session is signed out.", "success")
    else:
        flash("That session had already ended.", "info")
    return redirect(url_for(".account_page"), 303)


@bp.post("/account/sessions/sign-out-others")
@sessions.login_required
def sign_out_other_sessions() -> Any:
    account = _account()
    generation = store_sessions.next_generation(get_db(), account.user_id)
    response = redirect(url_for(".account_page"), 303)
    _keep_this_session_only(response, _with(account, session_generation=generation))
    flash("Every other session is signed out.", "success")
    return response


@bp.route("/account/delete", methods=["GET", "POST"])
@sessions.login_required
def delete_account() -> Any:
    account = _account()
    db = get_db()
    blocking = account_removal.sole_ownerships(db, account.user_id)
    form = Form({})
    if request.method == "POST" and not blocking:
        if _current_password_ok(account, form):
            try:
                account_removal.delete_account(db, account)
            except account_removal.LastOwnerOf as exc:
                blocking = exc.names
            else:
                response = redirect(url_for("auth.login"), 303)
                sessions.sign_out(response)
                flash("Your account is deleted.", "info")
                return response
    status = 409 if blocking and request.method == "POST" else (400 if form.errors else 200)
    return render_template(
        "auth/account_delete.html", account=account, blocking=blocking, form=form
    ), status
