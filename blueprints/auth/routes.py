"""Register, sign in and sign out."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request

from blueprints.auth import devices, passwords
from store import accounts, signin_limits
from store.db import get_db
from web import sessions
from web.forms import Form
from web.security import preauth_csrf_valid, safe_next

from . import confirm, forms

bp = Blueprint("auth", __name__)

SIGN_IN_FAILED = "That e-mail and password do not match an account."


def _check_preauth_csrf() -> None:
    if not preauth_csrf_valid():
        abort(403, description="This form had expired. Go back, reload the page and try again.")


def _next_target() -> str:
    return safe_next(request.values.get("next"))


@bp.route("/register", methods=["GET", "POST"])
@sessions.preauth
def register():
    form = Form({"email": "", "name": "", "password": ""})
    if request.method == "POST":
        _check_preauth_csrf()
        form = forms.registration(request.form)
        if form.valid:
            method = current_app.config["PASSWORD_HASH_METHOD"]
            try:
                account = accounts.create_account(
                    get_db(),
                    form.values["email"],
                    form.values["name"],
                    passwords.hash_password(form.values["password"], method),
                )
            except accounts.EmailTaken:
                # Said plainly rather than hidden behind a mail: a person who forgot they
                # had an account needs to know now; the reset page is the one that hides it.
                form.errors["email"] = (
                    "This e-mail address cannot be used for a new account. If it is yours, "
                    "sign in instead."
                )
            else:
                response = redirect(_next_target(), 303)
                sessions.sign_in(response, account)
                devices.remember_device(response, account.email)
                confirm.send_confirmation(account)
                flash(
                    f"Welcome, {account.name}. Your account is ready. We sent a link to "
                    f"{account.email}: open it to confirm your address.",
                    "success",
                )
                return response
    form.values["password"] = ""
    status = 400 if form.errors else 200
    return render_template("auth/register.html", form=form, next=_next_target()), status


@bp.route("/login", methods=["GET", "POST"])
@sessions.preauth
def login():
    form = Form({"email": "", "password": ""})
    if request.method == "GET" and sessions.current_user() is not None:
        return redirect(_next_target())
    if request.method == "POST":
        _check_preauth_csrf()
        form = forms.sign_in(request.form)
        if form.valid:
            account, wait = _authenticate(form.values["email"], form.values["password"])
            if wait:
                response = current_app.make_response(
                    render_template(
                        "auth/login.html", form=form, next=_next_target(), locked_for=wait
                    )
                )
                response.status_code = 429
                response.headers["Retry-After"] = str(wait)
                form.values["password"] = ""
                return response
            if account is not None:
                response = redirect(_next_target(), 303)
                sessions.sign_in(response, account)
                devices.remember_device(response, account.email)
                return response
            form.errors["form"] = SIGN_IN_FAILED
    form.values["password"] = ""
    status = 400 if form.errors else 200
    return render_template("auth/login.html", form=form, next=_next_target()), status


def _authenticate(email: str, password: str) -> tuple[accounts.Account | None, int]:
    """The account for these credentials, or None; and seconds to wait when throttled.

    Each attempt is claimed in DynamoDB before the password is checked (per address, or per
    known device of it, and per client address: store/signin_limits.py, devices.py), so every
    server process shares the counts and concurrent guesses cannot overtake them. While an
    address must wait even the right password is refused, unchecked (OWASP: no oracle); the
    wait is short and not extended, and a browser that signed in before waits on its own.
    """
    db = get_db()
    config = current_app.config
    policy = _throttle_policy()
    attempt = signin_limits.Attempt(
        email, client=request.remote_addr or "unknown", device=devices.known_device(email)
    )
    refusal = signin_limits.claim_attempt(db, attempt, policy)
    if refusal is not None:
        return None, refusal.retry_after
    method = config["PASSWORD_HASH_METHOD"]
    account = accounts.find_by_email(db, email)
    if not passwords.verify(account.password_hash if account else None, password, method):
        return None, 0
    assert account is not None  # noqa: S101 - verify() is False without an account
    signin_limits.succeeded(db, attempt, policy)
    if passwords.needs_upgrade(account.password_hash, method):
        accounts.replace_password_hash(
            db, account.user_id, account.password_hash, passwords.hash_password(password, method)
        )
    return account, 0


def _throttle_policy() -> signin_limits.Policy:
    config = current_app.config
    return signin_limits.Policy(
        free_failures=config["LOGIN_FREE_FAILURES"],
        max_delay=int(config["LOGIN_MAX_DELAY"].total_seconds()),
        client_max_failures=config["LOGIN_CLIENT_MAX_FAILURES"],
        client_window=int(config["LOGIN_CLIENT_WINDOW"].total_seconds()),
    )


@bp.post("/logout")
def logout():
    response = redirect("/login", 303)
    if sessions.peek_user() is not None:
        sessions.sign_out(response)
        flash("You have signed out.", "info")
    return response
