"""Signed-in sessions: JWTs in HttpOnly cookies, checked on every request, refreshed while
in use, revoked on sign-out.

A session id (``sid``) stays the same across refreshes, so signing out revokes every token
the session ever had; the CSRF value stays too, so a form opened before a refresh still posts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from flask import Flask, Response, current_app, redirect, request, url_for
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    decode_token,
    get_jwt,
    set_access_cookies,
    unset_jwt_cookies,
    verify_jwt_in_request,
)
from flask_jwt_extended.exceptions import CSRFError, JWTExtendedException
from jwt.exceptions import PyJWTError

from store import accounts
from store import sessions as store_sessions
from store.db import get_db
from store.sessions import SessionRef
from web.security import PREAUTH_COOKIE, UNSAFE_METHODS, same_site_path
from web.state import request_state

jwt = JWTManager()
_CARRIED_CLAIMS = ("sid", "csrf", "auth_time", "name", "email", "gen")
# Marker attributes on view functions, set and read only through the functions below.
_SIGNED_IN_PAGE = "_signed_in_page"
_PREAUTH_PAGE = "_preauth_page"
T = TypeVar("T")


class SignedOut(Exception):
    """The request carries no live session."""


@dataclass(frozen=True)
class User:
    user_id: str
    email: str
    name: str


def preauth(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view whose forms work before signing in (login, register, invite links): an
    existing session cookie is ignored for its POSTs, which carry a pre-session CSRF token."""
    setattr(view, _PREAUTH_PAGE, True)
    return view


def mark_signed_in_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view as a signed-in page: hooks that act only before such pages (the migration
    gate) ask ``is_signed_in_page``. Every decorator that requires a session calls this."""
    setattr(view, _SIGNED_IN_PAGE, True)
    return view


def is_signed_in_page(view: Callable[..., Any] | None) -> bool:
    return bool(getattr(view, _SIGNED_IN_PAGE, False))


def is_preauth_page(view: Callable[..., Any] | None) -> bool:
    return bool(getattr(view, _PREAUTH_PAGE, False))


def requested_view() -> Callable[..., Any] | None:
    """The view function this request is routed to, if any."""
    return current_app.view_functions.get(request.endpoint or "")


def load_session() -> None:
    """Verify the cookie's signature, expiry and (for writes) CSRF; no DynamoDB call."""
    state = request_state()
    state.claims = None
    if not request.cookies.get(current_app.config["JWT_ACCESS_COOKIE_NAME"]):
        return
    if request.method in UNSAFE_METHODS and (
        request.endpoint is None or is_preauth_page(requested_view())
    ):
        return
    try:
        verify_jwt_in_request()
    except CSRFError:
        raise
    except (JWTExtendedException, PyJWTError):
        state.clear_auth = True
        return
    claims = get_jwt()
    max_age = current_app.config["JWT_SESSION_MAX_AGE"].total_seconds()
    if not claims.get("sid") or time.time() - claims.get("auth_time", 0) > max_age:
        state.clear_auth = True
        return
    state.claims = claims


def session_ref(claims: dict[str, Any]) -> SessionRef:
    """The session a token names; a token from before generations existed carries none (0)."""
    generation = claims.get("gen", 0)
    return SessionRef(
        claims.get("sid", ""), claims["sub"], generation if isinstance(generation, int) else -1
    )


def confirmed_read(read: Callable[[SessionRef], tuple[accounts.Account, T]]) -> T:
    """Run a store read that also checks the session (``read`` gets the session and returns
    the account with its result, or raises ``accounts.SessionRevoked``), so a page pays one
    call for both."""
    state = request_state()
    if state.claims is None:
        raise SignedOut
    try:
        account, result = read(session_ref(state.claims))
    except accounts.SessionRevoked:
        state.claims = None
        state.clear_auth = True
        raise SignedOut from None
    state.session_confirmed = True
    state.account = account
    return result


def _check_session(ref: SessionRef) -> tuple[accounts.Account, None]:
    account, _ = store_sessions.check(get_db(), ref, [])
    return account, None


def current_account() -> accounts.Account | None:
    """The signed-in person's account as stored (read with the session check), or None."""
    if current_user() is None:
        return None
    return request_state().account


def current_user() -> User | None:
    state = request_state()
    if state.claims is None:
        return None
    if not state.session_confirmed:
        try:
            confirmed_read(_check_session)
        except SignedOut:
            return None
    return peek_user()


def signed_in() -> User:
    """The person of a ``login_required`` view, whose session the decorator confirmed."""
    user = current_user()
    if user is None:
        raise SignedOut
    return user


def peek_user() -> User | None:
    """The user the cookie names, before the revocation check: for page chrome only. Once
    the session was checked, name and address come from the profile read with it (fresh
    after a change made in another browser)."""
    state = request_state()
    claims = state.claims
    if not claims:
        return None
    if state.account is not None:
        return User(state.account.user_id, state.account.email, state.account.name)
    return User(claims["sub"], claims.get("email", ""), claims.get("name", ""))


def csrf_value() -> str:
    claims = request_state().claims
    return claims["csrf"] if claims else ""


def login_url() -> str:
    """The sign-in page, returning afterwards to this page (for a POST: the form's page)."""
    target = request.full_path if request.query_string else request.path
    if request.method != "GET":
        target = same_site_path(request.referrer)
    return url_for("auth.login") + "?" + urlencode({"next": target})


def redirect_to_login() -> Response:
    """To the sign-in page; 303 after a form, so the browser follows with a GET."""
    # flask.redirect builds the app's response class; its annotation names werkzeug's base.
    return cast(Response, redirect(login_url(), 303 if request.method != "GET" else 302))


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect_to_login()
        return view(*args, **kwargs)

    return mark_signed_in_page(wrapped)


def _session_end(auth_time: float) -> int:
    """When a session signed in at ``auth_time`` ends at the latest (plus a minute's slack)."""
    return int(auth_time + current_app.config["JWT_SESSION_MAX_AGE"].total_seconds()) + 60


def sign_in(response: Response, account: accounts.Account) -> None:
    """Issue a brand-new session (never reuse the one the browser had: session fixation),
    and list it under the account."""
    session_id = str(uuid.uuid4())
    auth_time = int(time.time())
    _issue(response, account, sid=session_id, csrf=str(uuid.uuid4()), auth_time=auth_time)
    store_sessions.record(
        get_db(),
        SessionRef(session_id, account.user_id, account.session_generation),
        user_agent=request.user_agent.string or "",
        until_epoch=_session_end(auth_time),
    )
    response.delete_cookie(PREAUTH_COOKIE)


def reissue(response: Response, account: accounts.Account) -> None:
    """A new token for this same session, with the account's current name, address and
    session generation (after the person changed one of them). CSRF value kept, so forms
    open in other tabs still post."""
    claims = request_state().claims
    if claims is None:
        raise SignedOut
    _issue(response, account, sid=claims["sid"], csrf=claims["csrf"], auth_time=claims["auth_time"])


def _issue(
    response: Response, account: accounts.Account, *, sid: str, csrf: str, auth_time: int
) -> None:
    token = create_access_token(
        identity=account.user_id,
        additional_claims={
            "jti": sid,
            "sid": sid,
            "csrf": csrf,
            "auth_time": auth_time,
            "name": account.name,
            "email": account.email,
            "gen": account.session_generation,
        },
    )
    set_access_cookies(response, token)
    request_state().signed_in = True


def sign_out(response: Response) -> None:
    claims = request_state().claims
    if claims:
        accounts.revoke_session(get_db(), claims["sid"], _session_end(claims["auth_time"]))
        store_sessions.forget(get_db(), claims["sub"], claims["sid"])
    # No Clear-Site-Data: it would also drop the cookie carrying the "signed out" message,
    # and expiring the two auth cookies is all that is needed.
    unset_jwt_cookies(response)
    request_state().signed_out = True


def refresh_or_clear(response: Response) -> Response:
    """Implicit refresh (fje "Implicit Refreshing With Cookies"), within an absolute cap."""
    state = request_state()
    if state.signed_in or state.signed_out:
        return response
    if state.clear_auth:
        unset_jwt_cookies(response)
        return response
    claims = state.claims
    if not claims or not state.session_confirmed:
        return response
    now = time.time()
    config = current_app.config
    session_left = claims["auth_time"] + config["JWT_SESSION_MAX_AGE"].total_seconds() - now
    if claims["exp"] - now > config["JWT_REFRESH_WITHIN"].total_seconds() or session_left <= 60:
        return response
    lifetime = min(config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds(), session_left)
    # "Last seen" on the account page: written at refresh, a few minutes apart at most.
    store_sessions.touch(get_db(), session_ref(claims))
    token = create_access_token(
        identity=claims["sub"],
        additional_claims={name: claims[name] for name in _CARRIED_CLAIMS if name in claims},
        expires_delta=timedelta(seconds=lifetime),
    )
    set_access_cookies(response, token)
    return response


def decode_cookie_session() -> dict[str, Any] | None:
    """The claims of the request's cookie if it is valid and live, ignoring CSRF."""
    raw = request.cookies.get(current_app.config["JWT_ACCESS_COOKIE_NAME"])
    if not raw:
        return None
    try:
        claims = decode_token(raw)
    except (JWTExtendedException, PyJWTError):
        return None
    try:
        store_sessions.check(get_db(), session_ref(claims), [])
    except (accounts.SessionRevoked, KeyError):
        return None
    return claims


def init_app(app: Flask) -> None:
    jwt.init_app(app)
    app.before_request(load_session)
    app.after_request(refresh_or_clear)
