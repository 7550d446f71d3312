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
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, current_app, g, redirect, request, url_for
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

from store import accounts, keys
from store.db import RawItem, get_db
from web.security import PREAUTH_COOKIE, UNSAFE_METHODS, same_site_path

jwt = JWTManager()
_CARRIED_CLAIMS = ("sid", "csrf", "auth_time", "name", "email")


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
    view.preauth = True  # type: ignore[attr-defined]
    return view


def _view_flag(name: str) -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, name, False))


def load_session() -> None:
    """Verify the cookie's signature, expiry and (for writes) CSRF; no DynamoDB call."""
    g.claims = None
    if not request.cookies.get(current_app.config["JWT_ACCESS_COOKIE_NAME"]):
        return
    if request.method in UNSAFE_METHODS and (request.endpoint is None or _view_flag("preauth")):
        return
    try:
        verify_jwt_in_request()
    except CSRFError:
        raise
    except (JWTExtendedException, PyJWTError):
        g.clear_auth = True
        return
    claims = get_jwt()
    max_age = current_app.config["JWT_SESSION_MAX_AGE"].total_seconds()
    if not claims.get("sid") or time.time() - claims.get("auth_time", 0) > max_age:
        g.clear_auth = True
        return
    g.claims = claims


def confirm_session(extra: list[keys.Key] | None = None) -> list[RawItem | None]:
    """Check the session was not signed out, reading ``extra`` rows in the same call."""
    claims = g.get("claims")
    if claims is None:
        raise SignedOut
    revoked, rows = accounts.session_rows(get_db(), claims["sid"], extra or [])
    if revoked:
        g.claims = None
        g.clear_auth = True
        raise SignedOut
    g.session_confirmed = True
    return rows


def current_user() -> User | None:
    claims = g.get("claims")
    if claims is None:
        return None
    if not g.get("session_confirmed"):
        try:
            confirm_session()
        except SignedOut:
            return None
    return User(claims["sub"], claims.get("email", ""), claims.get("name", ""))


def signed_in() -> User:
    """The person of a ``login_required`` view, whose session the decorator confirmed."""
    user = current_user()
    if user is None:
        raise SignedOut
    return user


def peek_user() -> User | None:
    """The user the cookie names, before the revocation check: for page chrome only."""
    claims = g.get("claims")
    return User(claims["sub"], claims.get("email", ""), claims.get("name", "")) if claims else None


def csrf_value() -> str:
    claims = g.get("claims")
    return claims["csrf"] if claims else ""


def login_url() -> str:
    """The sign-in page, returning afterwards to this page (for a POST: the form's page)."""
    target = request.full_path if request.query_string else request.path
    if request.method != "GET":
        target = same_site_path(request.referrer)
    return url_for("auth.login") + "?" + urlencode({"next": target})


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(login_url(), 303 if request.method != "GET" else 302)
        return view(*args, **kwargs)

    wrapped.login_required = True  # type: ignore[attr-defined]
    return wrapped


def sign_in(response: Response, account: accounts.Account) -> None:
    """Issue a brand-new session (never reuse the one the browser had: session fixation)."""
    session_id = str(uuid.uuid4())
    token = create_access_token(
        identity=account.user_id,
        additional_claims={
            "jti": session_id,
            "sid": session_id,
            "csrf": str(uuid.uuid4()),
            "auth_time": int(time.time()),
            "name": account.name,
            "email": account.email,
        },
    )
    set_access_cookies(response, token)
    response.delete_cookie(PREAUTH_COOKIE)
    g.signed_in = True


def sign_out(response: Response) -> None:
    claims = g.get("claims")
    if claims:
        max_age = current_app.config["JWT_SESSION_MAX_AGE"].total_seconds()
        accounts.revoke_session(get_db(), claims["sid"], int(claims["auth_time"] + max_age) + 60)
    # No Clear-Site-Data: it would also drop the cookie carrying the "signed out" message,
    # and expiring the two auth cookies is all that is needed.
    unset_jwt_cookies(response)
    g.signed_out = True


def refresh_or_clear(response: Response) -> Response:
    """Implicit refresh (fje "Implicit Refreshing With Cookies"), within an absolute cap."""
    if g.get("signed_in") or g.get("signed_out"):
        return response
    if g.get("clear_auth"):
        unset_jwt_cookies(response)
        return response
    claims = g.get("claims")
    if not claims or not g.get("session_confirmed"):
        return response
    now = time.time()
    config = current_app.config
    session_left = claims["auth_time"] + config["JWT_SESSION_MAX_AGE"].total_seconds() - now
    if claims["exp"] - now > config["JWT_REFRESH_WITHIN"].total_seconds() or session_left <= 60:
        return response
    lifetime = min(config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds(), session_left)
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
    revoked, _ = accounts.session_rows(get_db(), claims.get("sid", ""), [])
    return None if revoked else claims


def init_app(app: Flask) -> None:
    jwt.init_app(app)
    app.before_request(load_session)
    app.after_request(refresh_or_clear)
