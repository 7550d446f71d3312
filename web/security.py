"""Request and response hardening: safe redirects, cross-site checks, pre-sign-in CSRF,
and the security headers every HTML response carries."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import unquote, urlsplit

from flask import Flask, Response, abort, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

from web.state import request_state

PREAUTH_COOKIE = "preauth_csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def safe_next(target: str | None, default: str = "/") -> str:
    """Keep ``target`` only when it is a path on this site; anything else becomes ``default``.

    Browsers read ``\\`` as ``/`` and drop tabs and newlines, so ``/\\evil.example`` and
    ``\\n//evil.example`` are other sites; only a plain absolute path is accepted.
    """
    if not target or not isinstance(target, str):
        return default
    # Checked as sent and once decoded: something between us and the browser that decodes
    # the path would turn ``/%09/evil`` or ``/%2F/evil`` into another site.
    for candidate in (target, unquote(target)):
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in candidate) or "\\" in candidate:
            return default
        if not candidate.startswith("/") or candidate.startswith("//"):
            return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def same_site_path(url: str | None, default: str = "/") -> str:
    """The path and query of ``url`` if it is on this site (a Referer, say), else ``default``."""
    if not url:
        return default
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}" != own_origin():
        return default
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""), default)


def own_origin() -> str:
    configured = current_app.config.get("PUBLIC_URL")
    if configured:
        parts = urlsplit(configured)
        return f"{parts.scheme}://{parts.netloc}"
    return request.host_url.rstrip("/")


def _fetch_site() -> str:
    return request.headers.get("Sec-Fetch-Site", "").strip().lower()


def reject_cross_site_writes() -> None:
    """Refuse unsafe requests a browser marks as cross-site (OWASP CSRF: Fetch Metadata,
    then Origin), before any view or session logic runs.

    ``Origin: null`` (a page with ``Referrer-Policy: no-referrer``, such as our invite pages,
    a sandboxed frame, a privacy setting) says nothing about where a form came from, so it is
    accepted only when the browser also says ``Sec-Fetch-Site: same-origin``; otherwise a
    sibling subdomain could post with it.
    """
    if request.method not in UNSAFE_METHODS:
        return
    fetch_site = _fetch_site()
    if fetch_site == "cross-site":
        abort(403, description="This form was sent from another site.")
    origin = request.headers.get("Origin")
    if origin == "null":
        if fetch_site != "same-origin":
            abort(403, description="This form was sent from another site.")
    elif origin and origin.rstrip("/") != own_origin():
        abort(403, description="This form was sent from another site.")


def same_origin_request() -> bool:
    """Whether the browser says this request came from one of our own pages.

    Stricter than reject_cross_site_writes, which lets header-less clients through: here a
    request must prove it, by ``Sec-Fetch-Site: same-origin`` or by an ``Origin`` equal to
    ours (``Origin: null`` counts only together with ``Sec-Fetch-Site: same-origin``).
    """
    fetch_site = _fetch_site()
    if fetch_site:
        return fetch_site == "same-origin"
    origin = request.headers.get("Origin", "")
    return origin not in ("", "null") and origin.rstrip("/") == own_origin()


def _preauth_signature(nonce: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"preauth-csrf|" + nonce.encode(), hashlib.sha256).hexdigest()


def preauth_csrf_token() -> str:
    """The hidden-field value for forms used before signing in (login CSRF defence).

    A signed double submit: the cookie holds a random nonce, the form an HMAC of it, so a
    site that can plant cookies still cannot forge the form field.
    """
    nonce = request.cookies.get(PREAUTH_COOKIE)
    if not nonce or len(nonce) > 128:
        state = request_state()
        nonce = state.new_preauth_nonce or secrets.token_urlsafe(32)
        state.new_preauth_nonce = nonce
    return _preauth_signature(nonce)


def preauth_csrf_valid() -> bool:
    nonce = request.cookies.get(PREAUTH_COOKIE, "")
    sent = request.form.get("csrf_token", "")
    return bool(nonce and sent) and hmac.compare_digest(_preauth_signature(nonce), sent)


def set_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    if current_app.config["APP_ENV"] != "development":
        headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
    # Anything shown to a signed-in person (their name is in every page's header), and any
    # response that starts or ends a session, must not be kept by a browser or a proxy;
    # ``no_store`` covers the rest (an invite link opened while signed out).
    state = request_state()
    if state.no_store or state.claims or state.signed_in or state.signed_out:
        headers["Cache-Control"] = "no-store"
    nonce = state.new_preauth_nonce
    if nonce:
        response.set_cookie(
            PREAUTH_COOKIE,
            nonce,
            httponly=True,
            samesite="Lax",
            secure=current_app.config["JWT_COOKIE_SECURE"],
        )
    return response


def trust_proxies(app: Flask) -> None:
    """Behind ``TRUSTED_PROXIES`` reverse proxies, take the client address (sign-in limits,
    logs) from the last that many ``X-Forwarded-For`` entries, which those proxies wrote.

    With 0 (the default) the header is ignored: anyone can send one, so trusting it without
    a proxy that overwrites it would let each request claim a fresh address.
    """
    count = int(app.config.get("TRUSTED_PROXIES") or 0)
    if count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count)  # type: ignore[method-assign]


def init_app(app: Flask) -> None:
    trust_proxies(app)
    app.before_request(reject_cross_site_writes)
    app.after_request(set_headers)
