"""Confirming an e-mail address: the link mailed at registration, the notice an unconfirmed
person sees (with a resend button, rate limited per account), and the link that moves an
account to a new address."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for

from store import account_changes, account_tokens, accounts
from store.db import get_db
from web import sessions

from . import mailing
from .account_blueprint import bp, check_preauth_csrf, private, private_page, unusable_link


def send_confirmation(account: accounts.Account) -> bool:
    """Mail a fresh confirmation link to the account's address."""
    lifetime = current_app.config["CONFIRM_LIFETIME"]
    token = account_tokens.issue(
        get_db(),
        account_tokens.CONFIRM,
        user_id=account.user_id,
        email=account.email,
        lifetime_seconds=int(lifetime.total_seconds()),
    )
    return mailing.confirmation(account.email, token)


@bp.get("/confirm")
@sessions.login_required
def confirm_notice() -> Any:
    account = sessions.current_account()
    if account is None or account.confirmed:
        flash("Your e-mail address is confirmed.", "info")
        return redirect(url_for("main.index"))
    return render_template("auth/confirm_notice.html", account=account)


@bp.post("/confirm/resend")
@sessions.login_required
def resend_confirmation() -> Any:
    account = sessions.current_account()
    if account is None or account.confirmed:
        return redirect(url_for("main.index"), 303)
    wait = mailing.wait_before_mailing("confirm", account.user_id)
    if wait:
        response = current_app.make_response(
            (render_template("auth/confirm_notice.html", account=account, wait=wait), 429)
        )
        response.headers["Retry-After"] = str(wait)
        return response
    if send_confirmation(account):
        flash(f"We sent a new confirmation link to {account.email}.", "success")
    else:
        flash("The confirmation mail could not be sent. Try again in a while.", "error")
    return redirect(url_for(".confirm_notice"), 303)


def _confirm_link(purpose: str, token: str, apply: Any, done: str) -> Any:
    """GET shows what the link does, POST does it (a GET never changes anything)."""
    ticket = account_tokens.find(get_db(), purpose, token)
    if ticket is None:
        return unusable_link()
    if request.method == "GET":
        return private_page(
            "auth/confirm_link.html", ticket=ticket, change=purpose != account_tokens.CONFIRM
        )
    check_preauth_csrf()
    try:
        apply(ticket)
    except account_changes.TokenUnusable:
        return unusable_link()
    except accounts.EmailTaken:
        return private_page("auth/confirm_link.html", 409, ticket=ticket, change=True, taken=True)
    flash(done, "success")
    return private(redirect(url_for("main.index"), 303))


@bp.route("/confirm/<token>", methods=["GET", "POST"])
@sessions.preauth
def confirm(token: str) -> Any:
    return _confirm_link(
        account_tokens.CONFIRM,
        token,
        lambda ticket: account_changes.confirm_address(get_db(), ticket),
        "Your e-mail address is confirmed. Thank you!",
    )


def _change_email(ticket: account_tokens.Ticket) -> None:
    db = get_db()
    account = accounts.get_account(db, ticket.user_id)
    if account is None:
        raise account_changes.TokenUnusable
    account_changes.change_email(db, ticket, account.email)
    mailing.notice(
        account.email,
        f"The e-mail address of your account was changed to {ticket.email}. "
        "Sign in with the new address from now on.",
    )


@bp.route("/account/email/<token>", methods=["GET", "POST"])
@sessions.preauth
def confirm_email_change(token: str) -> Any:
    return _confirm_link(
        account_tokens.EMAIL_CHANGE,
        token,
        _change_email,
        "Your new e-mail address is confirmed and in use. Sign in with it from now on.",
    )
