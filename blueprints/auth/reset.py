"""Forgotten passwords (OWASP Forgot Password cheat sheet): ask with an address, get a
single-use link by mail, choose a new password; every session is signed out and the account
is told.

The answer to a request is the same page whether or not an account has that address, and
both paths make the same rate-limit write; requests are limited per address, silently (a
limited request gets the same page too).
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_jwt_extended import unset_jwt_cookies

from blueprints.auth import passwords
from store import account_changes, account_tokens, accounts
from store.db import get_db
from web import sessions
from web.forms import Form

from . import forms, mailing
from .account_blueprint import bp, check_preauth_csrf, private, private_page, unusable_link


def _start_reset(address: str) -> None:
    address = accounts.normalise_email(address)
    if mailing.wait_before_mailing("reset", address):
        return
    db = get_db()
    account = accounts.find_by_email(db, address)
    if account is None:
        return
    lifetime = current_app.config["RESET_LIFETIME"]
    token = account_tokens.issue(
        db,
        account_tokens.RESET,
        user_id=account.user_id,
        email=account.email,
        lifetime_seconds=int(lifetime.total_seconds()),
    )
    mailing.reset(account.email, token)


@bp.route("/password/forgot", methods=["GET", "POST"])
@sessions.preauth
def forgot_password() -> Any:
    form = Form({"email": ""})
    if request.method == "POST":
        check_preauth_csrf()
        form = forms.email_only(request.form)
        if form.valid:
            _start_reset(form.values["email"])
            return render_template("auth/forgot_sent.html", email=form.values["email"])
    status = 400 if form.errors else 200
    return render_template("auth/forgot.html", form=form), status


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@sessions.preauth
def reset_password(token: str) -> Any:
    db = get_db()
    ticket = account_tokens.find(db, account_tokens.RESET, token)
    if ticket is None:
        return unusable_link()
    form = Form({"password": ""})
    if request.method == "POST":
        check_preauth_csrf()
        form = forms.new_password(request.form)
        if form.valid:
            method = current_app.config["PASSWORD_HASH_METHOD"]
            new_hash = passwords.hash_password(form.values["password"], method)
            try:
                account_changes.reset_password(db, ticket, new_hash)
            except account_changes.TokenUnusable:
                return unusable_link()
            mailing.notice(
                ticket.email,
                "The password of your account was changed with a reset link, and every "
                "session was signed out.",
            )
            response = redirect(url_for("auth.login"), 303)
            unset_jwt_cookies(response)
            flash(
                "Your password is changed and every session was signed out. Sign in with "
                "the new password.",
                "success",
            )
            return private(response)
    return private_page("auth/reset.html", 400 if form.errors else 200, form=form, token=token)
